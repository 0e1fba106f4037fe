"""Serving a class from one process: process-wide settings and pictures encoded once at display size."""

from vizlib.serving.pictures import display_jpeg
from vizlib.serving.process import configure_process

__all__ = ["configure_process", "display_jpeg"]
