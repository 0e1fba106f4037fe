"""Plotly figure builders, one module per feature. They take arrays and dataclasses, return figures."""

# Loaded whole before any figure is built. Plotly's validators check whether pandas (and PIL) are in use by
# peeking at sys.modules without importing; while another thread is still importing pandas for the first
# time, that peek returns the half-made module and building a trace raises "AttributeError: partially
# initialized module 'pandas' has no attribute 'Series'". Seen with 30 concurrent sessions on a fresh server.
import pandas  # noqa: F401
import PIL.Image  # noqa: F401
