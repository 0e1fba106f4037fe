"""Feature visualization: an input that makes one channel fire, found by optimisation (Olah et al., 2017).

:mod:`~vizlib.featurevis.param` holds the decorrelated Fourier-space picture, :mod:`~vizlib.featurevis.augment`
the random views taken at each step, :mod:`~vizlib.featurevis.optimize` the gradient ascent, and
:mod:`~vizlib.featurevis.service` the process-wide cache and queue the app uses.
"""

from vizlib.featurevis.optimize import channel_objective, visualize
from vizlib.featurevis.service import CACHE, QUEUE, cached, visualize_cached

__all__ = ["CACHE", "QUEUE", "cached", "channel_objective", "visualize", "visualize_cached"]
