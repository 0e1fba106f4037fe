"""Choosing the compute device, and falling back to the CPU when the GPU runs out of memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = [
    "DEVICE_ENV",
    "DeviceFallbackWarning",
    "collect_fallbacks",
    "default_device",
    "describe_device",
    "is_oom",
    "report_fallback",
]

#: Set to ``cpu`` to force the CPU even where CUDA is available (or ``cuda``/``cuda:1`` to pick a GPU).
DEVICE_ENV = "CNN_LENS_DEVICE"


class DeviceFallbackWarning(RuntimeWarning):
    """Emitted when a request ran out of GPU memory and was retried on the CPU."""


# The notices of the request running in this context (a session's script thread, or a job that copied its
# context). A context variable, not global state: sessions run side by side in threads.
_FALLBACKS: ContextVar[list[str] | None] = ContextVar("cnn_lens_device_fallbacks", default=None)


@contextmanager
def collect_fallbacks() -> Iterator[list[str]]:
    """Collect the CPU-fallback notices raised by the code run inside the ``with`` block, in this context only.

    Yields:
        A list that receives one sentence per fallback (see :func:`report_fallback`).
    """
    notices: list[str] = []
    token = _FALLBACKS.set(notices)
    try:
        yield notices
    finally:
        _FALLBACKS.reset(token)


def report_fallback(message: str) -> None:
    """Tell the current request's collector (if any) that work fell back to the CPU."""
    notices = _FALLBACKS.get()
    if notices is not None:
        notices.append(message)


def default_device() -> torch.device:
    """The device models load on: ``$CNN_LENS_DEVICE`` if set, else CUDA when available, else CPU.

    Raises:
        ValueError: The environment variable names a device that does not exist here.
    """
    wanted = os.environ.get(DEVICE_ENV, "").strip().lower()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError:
            raise ValueError(f"{DEVICE_ENV}={wanted!r} is not a device name; use 'cpu' or 'cuda'.") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={wanted!r} asks for CUDA, but no CUDA GPU is available here.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ValueError(
                f"{DEVICE_ENV}={wanted!r} asks for GPU {device.index}, but this machine has {count} "
                f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})."
            )
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"{DEVICE_ENV}={wanted!r}: CNN Lens runs on 'cpu' or 'cuda' devices only.")
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def describe_device(device: torch.device | str) -> str:
    """A short human label, e.g. ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 threads)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"GPU: {torch.cuda.get_device_name(index)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def is_oom(exc: BaseException) -> bool:
    """Whether an exception is a CUDA out-of-memory error."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)
