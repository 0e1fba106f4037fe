"""``pip install .`` gives a working vizlib outside the checkout: gallery, digits files, every subpackage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ]", line.strip(), maxsplit=1)[0].lower() for line in lines if line.strip()}


def test_pyproject_dependencies_match_requirements_txt():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    declared = project["dependencies"] + project["optional-dependencies"]["app"]
    assert _requirement_names(listed) == _requirement_names(declared)
    assert "streamlit" not in _requirement_names(project["dependencies"])  # a notebook needs no web stack


def test_the_streamlit_floor_has_what_the_app_calls():
    """``pip install ".[app]"`` into an environment that already has an older Streamlit keeps it: the floor must be
    a release the app runs on. ``st.file_uploader(max_upload_size=...)`` (the sidebar) arrived in 1.53."""
    import inspect

    import streamlit as st
    from packaging.requirements import Requirement

    listed = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("streamlit")]
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["app"]
    for line in [*listed, *extra]:
        requirement = Requirement(line)
        if requirement.name == "streamlit":
            assert not requirement.specifier.contains("1.52.0"), line  # 1.52 has no max_upload_size
            assert requirement.specifier.contains(st.__version__), line
    assert "max_upload_size" in inspect.signature(st.file_uploader).parameters


@pytest.mark.slow
def test_installed_package_works_from_another_folder(tmp_path):
    src, site, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    # a copy of what the package is built from, so the build leaves nothing in the checkout
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "vizlib", src / "vizlib", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "checkpoints").mkdir()
    for path in (ROOT / "checkpoints").glob("digits_lenet5.*"):
        shutil.copy(path, src / "checkpoints")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(src)],
        check=True, capture_output=True, timeout=300,
    )
    subpackages = sorted(
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vizlib").rglob("__init__.py")
        if "__pycache__" not in p.parts
    )
    elsewhere.mkdir()
    code = textwrap.dedent(f"""
        import importlib, pathlib
        import vizlib
        from vizlib import digits, images, models
        site = pathlib.Path({str(site)!r})
        assert pathlib.Path(vizlib.__file__).is_relative_to(site), vizlib.__file__
        for name in {subpackages!r}:
            assert pathlib.Path(importlib.import_module(name).__file__).is_relative_to(site), name
        assert len(images.gallery()) >= 10 and images.load_gallery_image("cat").ndim == 3
        assert digits.DEFAULT_CHECKPOINT.is_relative_to(site) and digits.DEFAULT_CARD.is_file()
        loaded = models.load_model(models.DIGITS_MODEL, device="cpu")
        from vizlib.digits.heldout import load_heldout
        from vizlib.digits.train import DEFAULT_HELDOUT
        assert DEFAULT_HELDOUT.is_relative_to(site) and load_heldout() is not None
        assert not models.checkpoints_dir().is_relative_to(site), models.checkpoints_dir()
        print("ok", len(loaded.categories))
    """)
    env = {k: v for k, v in os.environ.items() if k != "CNN_LENS_CHECKPOINTS"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok 10"
