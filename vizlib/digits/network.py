"""The digits network: a LeNet-5-style CNN for 28x28 MNIST-style digits, its classes and its checkpoint."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from vizlib._paths import shipped_file

__all__ = [
    "DEFAULT_CARD",
    "DEFAULT_CHECKPOINT",
    "CheckpointError",
    "LeNet5",
    "digits_categories",
    "load_digits_model",
]


#: The committed checkpoint (a state dict) and its model card: the checkout's checkpoints/, or the installed
#: package's copy (see vizlib._paths).
DEFAULT_CHECKPOINT = shipped_file("digits_lenet5.pth")
DEFAULT_CARD = shipped_file("digits_lenet5.json")


class CheckpointError(ValueError):
    """The checkpoint can't be loaded safely; the message says why and what to do."""


class LeNet5(nn.Module):
    """LeNet-5-style CNN for 28x28 digits: conv 5x5 -> pool -> conv 5x5 -> pool -> three dense layers.

    Every step is a named module (``conv1``, ``relu1``, ``pool1``, ..., ``fc3``) so activations
    can be taken by module name. The output is the ten class logits.

    Args:
        channels: Number of feature maps of conv1 and conv2.
        hidden: Widths of fc1 and fc2.
        num_classes: Number of outputs of fc3.
    """

    def __init__(
        self,
        channels: tuple[int, int] = (16, 32),
        hidden: tuple[int, int] = (120, 84),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        h1, h2 = hidden
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, padding=2)  # 28x28
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # 14x14
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)  # 10x10
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # 5x5
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 5 * 5, h1)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(h1, h2)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits of a batch ``[N, 1, 28, 28]`` as ``[N, num_classes]``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


def digits_categories() -> list[str]:
    """Return the class names of the digits model, ``["0", ..., "9"]``."""
    return [str(d) for d in range(10)]


def load_digits_model(path: str | Path | None = None) -> LeNet5:
    """Load the trained digits network from a state-dict checkpoint, in eval mode on the CPU.

    The file is read with ``torch.load(weights_only=True)``: a checkpoint that carries anything
    besides tensors and plain containers (a pickle with code in it) is refused.

    Args:
        path: The ``.pth`` file; ``None`` loads the committed ``checkpoints/digits_lenet5.pth``.

    Returns:
        The network in eval mode.

    Raises:
        CheckpointError: If the file is missing, unsafe, or does not fit the network.
    """
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"The digits checkpoint {path} does not exist. Train it with `python -m vizlib.digits.train`."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {path}: it contains objects other than tensors (possibly code), "
            "and only plain state dicts are loaded. Retrain with `python -m vizlib.digits.train`."
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({exc}).") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a state dict of tensors.")
    try:
        channels = (int(state["conv1.weight"].shape[0]), int(state["conv2.weight"].shape[0]))
        hidden = (int(state["fc1.weight"].shape[0]), int(state["fc2.weight"].shape[0]))
        model = LeNet5(channels=channels, hidden=hidden, num_classes=int(state["fc3.weight"].shape[0]))
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not hold LeNet5 weights ({exc}).") from exc
    return model.eval()
