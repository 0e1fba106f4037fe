"""Where vizlib finds its shipped files, in a repository checkout and in an installed package.

A checkout keeps the trained digits checkpoint and its card in ``checkpoints/`` beside ``vizlib/``; ``pip install
.`` copies them into ``vizlib/_checkpoints/`` (pyproject.toml maps that package to ``checkpoints/``). Downloaded
weights go to the checkout's ``checkpoints/``, or for an installed package to ``~/.cache/cnn-lens/checkpoints``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_DIR", "downloads_dir", "shipped_file"]

PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_CHECKPOINTS = PACKAGE_DIR.parent / "checkpoints"
_INSTALLED_CHECKPOINTS = PACKAGE_DIR / "_checkpoints"


def shipped_file(name: str) -> Path:
    """A file shipped with vizlib (e.g. ``digits_lenet5.pth``): the checkout's, else the installed package's."""
    repo, installed = _REPO_CHECKPOINTS / name, _INSTALLED_CHECKPOINTS / name
    return installed if installed.is_file() and not repo.is_file() else repo


def downloads_dir() -> Path:
    """The default folder for downloaded weights: the checkout's ``checkpoints/`` or a per-user cache folder."""
    if _REPO_CHECKPOINTS.is_dir():
        return _REPO_CHECKPOINTS
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cnn-lens" / "checkpoints"
