"""Plotly's optional dependencies are fully imported before any figure can be built from several threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURE_MODULES = sorted(p.stem for p in (ROOT / "vizlib" / "figures").glob("*.py") if p.stem != "__init__")

CHECK = """
import importlib, sys
importlib.import_module(sys.argv[1])
import plotly.graph_objects  # what the module builds figures with
missing = [name for name, attr in (("pandas", "Series"), ("pandas", "Index"), ("PIL.Image", "Image"))
           if not hasattr(sys.modules.get(name), attr)]
print(",".join(missing))
"""


def test_every_figure_module_is_listed():
    assert {"common", "feature_maps", "cam", "kernels"} <= set(FIGURE_MODULES)


@pytest.mark.parametrize("module", FIGURE_MODULES)
def test_importing_a_figure_module_loads_what_plotly_peeks_at(module):
    """A fresh interpreter: once a figure module is imported, pandas and PIL are whole in sys.modules.

    Plotly looks them up with ``sys.modules.get`` (no import, no import lock), so a thread building a
    figure while another thread is still importing pandas sees a partially initialized module.
    """
    out = subprocess.run(
        [sys.executable, "-c", CHECK, f"vizlib.figures.{module}"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True,
    )
    assert out.stdout.strip() == "", f"not loaded before figures are built: {out.stdout.strip()}"
