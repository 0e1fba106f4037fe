"""Bring your own model: a weights file for a registry architecture, checked and loaded safely.

The file is read from memory (never written to disk) as ``.safetensors`` or as a PyTorch state dict loaded
with ``weights_only=True``: a pickle that would run code is refused before anything in it runs. The
classifier head is sized from the weights, the class names must match it, and the network's memory is
bounded (``$CNN_LENS_USER_MODEL_MB``, 200 MB by default). Every refusal is a :class:`UserModelError`
whose message is one sentence a person can act on.

The result is an ordinary :class:`vizlib.models.LoadedModel` named ``user:<12 hex digits>`` (a hash of the
bytes, the architecture, the class names and the preprocessing), so caches keyed on the model name never mix
it with a registry model or with a different user model. Its ``spec.name`` is the architecture.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from vizlib import models
from vizlib.devices import default_device

__all__ = [
    "DEFAULT_USER_MODEL_MB",
    "USER_MODEL_MB_ENV",
    "CategoriesMismatchError",
    "KeysMismatchError",
    "ModelTooLargeError",
    "NotAWeightsFileError",
    "PreprocessingError",
    "ShapeMismatchError",
    "UnsafeWeightsError",
    "UserModelError",
    "is_user_model",
    "load_user_model",
    "model_bytes",
    "user_model_limit_bytes",
]

#: Environment variable: the most memory (MB) one session's own model may take; also the largest file.
USER_MODEL_MB_ENV = "CNN_LENS_USER_MODEL_MB"
DEFAULT_USER_MODEL_MB = 200
USER_PREFIX = "user:"
_HEAD_PROBE = 977  # an unusual class count: the head is the last layer that produces it
_AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")  # GoogLeNet / Inception auxiliary heads: not used here
_WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "weights")

ProgressFn = Callable[[float, str], None]


class UserModelError(models.ModelError):
    """A user's weights file was refused; the message says why and what to do."""


class NotAWeightsFileError(UserModelError):
    """The bytes are neither safetensors nor a PyTorch state dict."""


class UnsafeWeightsError(UserModelError):
    """A pickle that would run code or build objects other than tensors (refused, never executed)."""


class KeysMismatchError(UserModelError):
    """The file's parameter names do not match the architecture."""


class ShapeMismatchError(UserModelError):
    """A parameter's shape differs between the file and the architecture."""


class CategoriesMismatchError(UserModelError):
    """The class names do not match the head's number of outputs."""


class ModelTooLargeError(UserModelError):
    """The file or the network exceeds the per-session limit."""


class PreprocessingError(UserModelError):
    """Mean, std or input size cannot be used."""


def user_model_limit_bytes() -> int:
    """The per-session limit in bytes: ``$CNN_LENS_USER_MODEL_MB`` megabytes (default 200)."""
    raw = os.environ.get(USER_MODEL_MB_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_USER_MODEL_MB
    except ValueError:
        mb = DEFAULT_USER_MODEL_MB
    return int(mb * 2**20)


def is_user_model(loaded: models.LoadedModel) -> bool:
    """Whether ``loaded`` came from :func:`load_user_model` (it belongs to one session, not the registry)."""
    return loaded.name.startswith(USER_PREFIX)


def model_bytes(model: nn.Module) -> int:
    """Bytes held by a network's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


# --------------------------------------------------------------------------------------------- reading


def _is_safetensors(data: bytes) -> bool:
    if len(data) < 10:
        return False
    header = int.from_bytes(data[:8], "little")
    return 2 <= header <= len(data) - 8 and data[8:9] == b"{"


def _refused_global(message: str) -> str | None:
    match = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"global:? ([\w.]+)", message, re.IGNORECASE)
    return match.group(1) if match else None


def _read(data: bytes, filename: str) -> object:
    """Bytes -> the deserialised object, never running code."""
    if _is_safetensors(data):
        from safetensors import SafetensorError
        from safetensors.torch import load as load_safetensors

        try:
            return load_safetensors(data)
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise NotAWeightsFileError(f"{filename} looks like a safetensors file but is damaged ({exc}).") from None
    if not (data[:4] == b"PK\x03\x04" or data[:1] == b"\x80"):
        raise NotAWeightsFileError(
            f"{filename} is not a weights file: expected a .safetensors file or a PyTorch state dict (.pt/.pth) "
            "saved with torch.save(model.state_dict(), path)."
        )
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        what = _refused_global(str(exc))
        raise UnsafeWeightsError(
            f"{filename} was refused and nothing in it was run: it holds "
            + (f"code or objects ({what}) " if what else "code or objects ")
            + "besides tensors. Save only the weights: torch.save(model.state_dict(), path), or safetensors."
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, zipfile errors... for damaged files
        raise NotAWeightsFileError(
            f"{filename} is not a readable PyTorch weights file ({type(exc).__name__}: {str(exc)[:120]})."
        ) from None


def _state_dict(obj: object, filename: str) -> dict[str, torch.Tensor]:
    """The tensors of a state dict, unwrapped from a training checkpoint and a DataParallel prefix."""
    if isinstance(obj, Mapping):
        for key in _WRAPPERS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise NotAWeightsFileError(
            f"{filename} holds a {type(obj).__name__}, not a state dict: save model.state_dict()."
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise NotAWeightsFileError(f"{filename} holds no tensors: it is not a model's weights.")
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------------------------- checking


def _head_key(spec: models.ModelSpec) -> str:
    """The state-dict key of the classifier's weight (the last layer producing the class scores)."""
    with torch.device("meta"):
        net = models._build(spec, _HEAD_PROBE)
    head = None
    for name, module in net.named_modules():
        out = getattr(module, "out_features", getattr(module, "out_channels", None))
        if isinstance(module, nn.Linear | nn.Conv2d) and out == _HEAD_PROBE:
            head = name
    if head is None:  # every registry architecture has one; a new family without it is a bug
        raise UserModelError(f"Cannot find the classifier layer of {spec.name}.")
    return f"{head}.weight"


def _categories(categories: Sequence[str] | int | None, n_out: int) -> list[str]:
    if categories is None:
        return [f"class {i}" for i in range(n_out)]
    if isinstance(categories, int):
        names = [f"class {i}" for i in range(categories)]
    else:
        names = [str(c).strip() for c in categories if str(c).strip()]
    if len(names) != n_out:
        raise CategoriesMismatchError(
            f"The model's head has {n_out} outputs but {len(names)} class names were given: "
            f"give exactly {n_out} names, one per line (or the number {n_out})."
        )
    return names


def _listed(keys: Sequence[str], shown: int = 4) -> str:
    head = ", ".join(keys[:shown])
    return head + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _check_keys(model: nn.Module, state: dict[str, torch.Tensor], architecture: str, filename: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_listed(missing)}")
        if unexpected:
            parts.append(f"unexpected {_listed(unexpected)}")
        raise KeysMismatchError(
            f"The weights in {filename} are not a {architecture}: {'; '.join(parts)}. "
            "Pick the architecture the model was built with."
        )
    for key, want in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise ShapeMismatchError(
                f"Layer {key} has shape {_shape(got)} in {filename} but {_shape(want)} in {architecture}: "
                "pick the architecture (and variant) the model was built with."
            )


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _preprocessing(
    spec: models.ModelSpec,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    input_size: int | tuple[int, int] | None,
) -> models.ModelSpec:
    if spec.family == "digits":
        if mean is not None or std is not None or input_size not in (None, spec.input_size, spec.input_size[0]):
            raise PreprocessingError(
                "The digits architecture has its own preprocessing (crop to the ink, centre, 28x28): leave mean, "
                "std and input size empty."
            )
        return spec
    channels = spec.in_channels
    mean = tuple(float(m) for m in (spec.mean if mean is None else mean))
    std = tuple(float(s) for s in (spec.std if std is None else std))
    for label, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels) or not all(abs(v) < 1e6 for v in values):
            raise PreprocessingError(f"Give the {label} as 1 or {channels} numbers, e.g. 0.485, 0.456, 0.406.")
    if any(not s > 0 for s in std):
        raise PreprocessingError("Every std value must be above 0.")
    mean, std = mean * (channels // len(mean)), std * (channels // len(std))
    size = spec.input_size if input_size is None else input_size
    if isinstance(size, int):
        size = (size, size)
    size = (int(size[0]), int(size[1]))
    if not all(16 <= s <= 1024 for s in size):
        raise PreprocessingError("The input size must be between 16 and 1024 pixels.")
    return dataclasses.replace(spec, mean=mean, std=std, input_size=size)


# --------------------------------------------------------------------------------------------- loading


def load_user_model(
    data: bytes,
    architecture: str,
    categories: Sequence[str] | int | None = None,
    *,
    filename: str,
    device: torch.device | str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_size: int | tuple[int, int] | None = None,
    limit_bytes: int | None = None,
    progress: ProgressFn | None = None,
) -> models.LoadedModel:
    """Load a user's weights for a registry architecture, from memory, refusing anything unsafe or unfit.

    Args:
        data: The file's bytes (``.safetensors`` or a ``torch.save``-d state dict; a training checkpoint
            holding one under ``"state_dict"`` or ``"model"`` also works).
        architecture: A name from :func:`vizlib.models.list_models`.
        categories: The class names (one per output) or their number; ``None`` numbers the head's outputs.
        filename: The file's name, used in messages and in the model's title.
        device: Where to run; defaults to :func:`vizlib.devices.default_device`.
        mean: Per-channel mean on 0..1 pixels (default: the architecture's).
        std: Per-channel std (default: the architecture's).
        input_size: Side, or (height, width), of the network input (default: the architecture's).
        limit_bytes: The most the file and the network's memory may take (default
            :func:`user_model_limit_bytes`).
        progress: Called as ``progress(fraction, what)`` between steps.

    Returns:
        A :class:`vizlib.models.LoadedModel` named ``user:<hash>``, in eval mode, weights frozen.

    Raises:
        vizlib.models.UnknownModelError: ``architecture`` is not registered.
        NotAWeightsFileError: Not safetensors nor a PyTorch state dict, or damaged.
        UnsafeWeightsError: A pickle carrying code (refused; nothing in it runs).
        KeysMismatchError: Parameter names missing or unexpected for the architecture (a few are named).
        ShapeMismatchError: A layer's shape differs (the layer and both shapes are named).
        CategoriesMismatchError: The class names do not match the head's outputs.
        ModelTooLargeError: The file or the network exceeds the limit.
        PreprocessingError: Unusable mean, std or input size.
    """
    step = progress or (lambda fraction, what: None)
    spec = _preprocessing(models.get_spec(architecture), mean, std, input_size)
    limit = user_model_limit_bytes() if limit_bytes is None else int(limit_bytes)
    if len(data) > limit:
        raise ModelTooLargeError(
            f"{filename} is {_mb(len(data))}, over the {_mb(limit)} limit for your own model "
            f"(the server's {USER_MODEL_MB_ENV}). Pick a smaller architecture."
        )
    step(0.1, f"Reading {filename}…")
    state = _state_dict(_read(bytes(data), filename), filename)
    state = {k: v for k, v in state.items() if not k.startswith(_AUX_PREFIXES)}
    head = _head_key(spec)
    if head not in state:
        raise KeysMismatchError(
            f"The weights in {filename} are not a {architecture}: its classifier {head} is missing (the file has "
            f"{_listed(list(state))}). Pick the architecture the model was built with."
        )
    n_out = int(state[head].shape[0])
    names = _categories(categories, n_out)
    step(0.3, f"Building {spec.title.split(' (')[0]} with {n_out} classes…")
    with torch.device("meta"):
        probe = models._build(spec, n_out)
    models._drop_aux_heads(probe)
    needed = model_bytes(probe)
    if needed > limit:
        raise ModelTooLargeError(
            f"{architecture} with {n_out} classes needs {_mb(needed)} of memory, over the {_mb(limit)} limit for "
            f"your own model (the server's {USER_MODEL_MB_ENV}). Pick a smaller architecture."
        )
    _check_keys(probe, state, architecture, filename)
    with models._seeded(0):
        model = models._build(spec, n_out)
    models._drop_aux_heads(model)
    step(0.6, "Loading the weights…")
    model.load_state_dict(state, strict=True)
    del state
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    digest = hashlib.sha256(bytes(data))
    digest.update(repr((architecture, names, spec.mean, spec.std, spec.input_size)).encode())
    name = USER_PREFIX + digest.hexdigest()[:12]
    title = f"{filename} ({spec.title.split(' (')[0]}, {n_out} classes)"
    spec = dataclasses.replace(
        spec, title=title, weights_url=None, top1=None,
        description=f"Your own weights from {filename} on the {architecture} architecture; this session only.",
    )
    step(1.0, "Ready.")
    return models.LoadedModel(name, model, device, names, spec, True)
