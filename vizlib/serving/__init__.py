"""Serving a class from one process: process-wide settings and pictures encoded once at display size."""

from vizlib.serving.housekeeping import Housekeeper
from vizlib.serving.pictures import display_jpeg
from vizlib.serving.process import configure_process, housekeeper

__all__ = ["Housekeeper", "configure_process", "display_jpeg", "housekeeper"]
