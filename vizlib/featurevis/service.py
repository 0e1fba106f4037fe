"""One feature visualization per (model, layer, channel) for the whole class: cached, computed in a queue.

Thirty students asking for the same channel share one computation (the queue's shared tasks) and then one
cached picture; different requests wait their turn in :data:`QUEUE`, whose single worker keeps the server's
other requests responsive.
"""

from __future__ import annotations

import numpy as np

from vizlib.caching import LRUCache
from vizlib.featurevis.optimize import visualize
from vizlib.jobs import JobQueue, Progress
from vizlib.models import LoadedModel

__all__ = ["CACHE", "QUEUE", "cache_key", "cached", "visualize_cached"]

#: Finished pictures, shared by every session (about 50 kB each at 128 px).
CACHE: LRUCache[tuple, np.ndarray] = LRUCache(512)
#: The queue feature visualizations (and other optimisation work of the page) run in.
QUEUE = JobQueue("featurevis", workers=1, max_waiting=200, nice=10)  # nicer than page requests (vizlib.jobs)


def cache_key(loaded: LoadedModel, layer: str, channel: int, size: int, steps: int, seed: int) -> tuple:
    """What identifies one picture."""
    return (loaded.name, loaded.pretrained, layer, int(channel), int(size), int(steps), int(seed))


def cached(loaded: LoadedModel, layer: str, channel: int, *, size: int = 128, steps: int = 256,
           seed: int = 0) -> np.ndarray | None:
    """The finished picture if someone computed it already, else ``None``."""
    return CACHE.get(cache_key(loaded, layer, channel, size, steps, seed))


def visualize_cached(
    loaded: LoadedModel, layer: str, channel: int, *, size: int = 128, steps: int = 256, seed: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """:func:`~vizlib.featurevis.visualize`, computed once per key for the whole process."""
    key = cache_key(loaded, layer, channel, size, steps, seed)
    done = CACHE.get(key)
    if done is not None:
        return done
    picture = visualize(loaded, layer, channel, size=size, steps=steps, seed=seed, progress=progress)
    picture.setflags(write=False)
    return CACHE.put(key, picture)
