"""notebooks/tour.ipynb runs top to bottom without an error, every figure an inline plotly figure; the README's
"From Python" block is the notebook's first code cell."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "tour.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"


def test_readme_from_python_is_the_notebooks_first_cell():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    first = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code")
    assert block.strip() == first.source.strip()


@pytest.mark.slow
def test_tour_notebook_runs_and_draws_plotly_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's vizlib
    monkeypatch.setenv("CNN_LENS_DEVICE", "cpu")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    figures = [o for c in code for o in c.outputs if o.output_type == "display_data" and PLOTLY in o.data]
    assert len(figures) == 6  # top-5, feature maps, filters, receptive field, Grad-CAM, a convolution frame
    assert all(fig.data[PLOTLY]["data"] for fig in figures)
    top5 = figures[0].data[PLOTLY]["data"][0]
    assert top5["type"] == "bar" and len(top5["y"]) == 5
    first = code[0].outputs[-1].data["text/plain"]
    assert first.startswith("[('Egyptian cat', 0.8")  # the gallery cat's top-5, as the README says
    gif = tmp_path / "convolution.gif"
    assert gif.is_file() and gif.read_bytes()[:6] == b"GIF89a"
