"""The Convolution arithmetic page through AppTest: the numbers it shows, the player, the modes, the tabs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from tests.conftest import APP, open_page
from vizlib import conv_arithmetic as ca

pytestmark = pytest.mark.slow

PAGE = "pages/convolution.py"


def _page() -> AppTest:
    return open_page(PAGE, timeout=60)


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _step_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Step "))


def _heatmap_text(fig: dict, index: int) -> np.ndarray:
    return np.asarray([t for t in fig["data"] if t["type"] == "heatmap"][index]["text"])


def _torch_conv(x: np.ndarray, w: np.ndarray, **kwargs) -> np.ndarray:
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)[None, None]  # noqa: E731
    return F.conv2d(t(x), t(w), **kwargs)[0, 0].numpy()


def test_page_imports_neither_torch_nor_cv2() -> None:
    """The page is thin: everything it imports (besides streamlit) loads without torch or OpenCV."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    tree = ast.parse((Path(APP).parent / PAGE).read_text(encoding="utf-8"))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module != "__future__"}
    modules |= {
        f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "vizlib"
        for a in n.names
    }  # fmt: skip
    modules |= {  # submodules taken from a lesson package (``from vizlib.conv_arithmetic import export``)
        f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        and (n.module or "").startswith("vizlib.") for a in n.names
        if (Path(APP).parent / n.module.replace(".", "/") / f"{a.name}.py").is_file()
    }  # fmt: skip
    assert "vizlib.conv_arithmetic" in modules and not {"torch", "cv2"} & modules
    code = "import importlib, sys\n"
    code += "".join(f"importlib.import_module({m!r})\n" for m in sorted(modules - {"streamlit"}))
    code += "print('torch' in sys.modules, 'cv2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(APP).parent)
    assert out.stdout.split() == ["False", "False"]


def test_default_page_shows_formula_first_step_and_worked_examples() -> None:
    at = _page()
    assert at.title[0].value == "Convolution arithmetic"
    latex = [el.value for el in at.latex]
    # 5x5 lecture pattern, kernel 3, stride 1, no padding: floor((5 + 0 - 2 - 1) / 1) + 1 = 3.
    assert any(r"\frac{5 + 2\cdot 0 - 1\cdot(3-1) - 1}{1}" in v and v.strip().endswith("= 3\n$$") for v in latex)
    assert at.metric[0].value == "3 × 3"
    assert _step_line(at).startswith("**Step 1 of 9**")
    assert "= 15`" in _step_line(at)

    # Show the numbers: the lectures' 4x4 example gives [[15, 16], [6, 15]].
    worked = next(v for v in latex if r"\star" in v and "stride" not in v)
    assert r"\begin{bmatrix}15 & 16 \\ 6 & 15\end{bmatrix}" in worked
    assert r"\begin{bmatrix}1 & 2 & 3 & 0 \\ 0 & 1 & 2 & 3 \\ 3 & 0 & 1 & 2 \\ 2 & 3 & 0 & 1\end{bmatrix}" in worked
    lines = at.code[0].value.splitlines()
    assert [line.rsplit("= ", 1)[1] for line in lines] == ["15", "16", "6", "15"]
    assert lines[0] == "out[0, 0] = 1·2 + 2·0 + 3·1 + 0·0 + 1·1 + 2·2 + 3·1 + 0·0 + 1·2 = 15"

    # The same kernel at stride 2 on the 7x7 pattern: a 3x3 output, each cell as torch computes it.
    seven = _torch_conv(ca.lecture_pattern(7), ca.LECTURE_KERNEL, stride=2)
    stride2 = next(v for v in latex if r"\star" in v and "stride" in v)
    rows = r" \\ ".join(" & ".join(str(int(v)) for v in row) for row in seven)
    assert rf"= \begin{{bmatrix}}{rows}\end{{bmatrix}}" in stride2
    assert len(at.code[1].value.splitlines()) == 9


def test_step_buttons_slider_play_and_pause() -> None:
    at = _page()
    at.button(key="conv_next").click().run()
    assert _step_line(at).startswith("**Step 2 of 9**") and _step_line(at).endswith("= 16`")
    at.button(key="conv_last").click().run()
    assert _step_line(at).startswith("**Step 9 of 9**")
    # The last frame's output is torch's convolution of the 5x5 lecture pattern.
    expected = _torch_conv(ca.lecture_pattern(5), ca.LECTURE_KERNEL)
    np.testing.assert_array_equal(_heatmap_text(_figures(at)[0], 3).astype(float), expected)
    at.button(key="conv_back").click().run()
    assert _step_line(at).startswith("**Step 8 of 9**")
    at.slider(key="conv_step_slider").set_value(3).run()
    assert _step_line(at).startswith("**Step 3 of 9**")

    at.button(key="conv_play").click().run()
    assert at.button(key="conv_play").label == "Pause"
    assert _step_line(at).startswith("**Step 4 of 9**")  # playing advances one step per tick
    assert not at.get("slider") or all(s.key != "conv_step_slider" for s in at.slider)
    at.button(key="conv_play").click().run()
    assert at.button(key="conv_play").label == "Play"
    assert _step_line(at).startswith("**Step 4 of 9**")  # paused: stays put
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["GIF for slides", "MP4 for slides"]


def test_transposed_mode_formula_and_output_padding() -> None:
    at = _page()
    at.radio(key="conv_mode").set_value("Transposed convolution").run()
    at.slider(key="conv_n").set_value(4).run()
    at.slider(key="conv_p_conv").set_value(1).run()
    at.slider(key="conv_op").set_value(1).run()
    assert not at.exception
    # (4-1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 8
    assert at.latex[1].value.strip().endswith(r"+ 1\cdot(3-1) + 1 + 1 = 8" + "\n$$")
    assert at.metric[0].value == "8 × 8"
    assert _step_line(at).startswith("**Step 1 of 16**")
    at.button(key="conv_last").click().run()
    out = _heatmap_text(_figures(at)[0], 2)  # the canvas panel: output plus the cropped border
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)[None, None]  # noqa: E731
    expected = F.conv_transpose2d(t(ca.lecture_pattern(4)), t(ca.LECTURE_KERNEL), stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(out[1:9, 1:9].astype(float), expected[0, 0].numpy())


def test_pooling_modes_and_impossible_parameters() -> None:
    at = _page()
    at.radio(key="conv_mode").set_value("Max pooling").run()
    at.slider(key="conv_k").set_value(2).run()
    at.checkbox(key="conv_ceil").check().run()
    # 5x5, window 2, stride 2, ceil: ceil((5 - 1 - 1) / 2) + 1 = 3.
    assert at.metric[0].value == "3 × 3"
    assert r"\left\lceil" in at.latex[1].value
    at.button(key="conv_last").click().run()
    assert _step_line(at) == "**Step 9 of 9** · `out[2, 2] = max(1) = 1`"

    at.radio(key="conv_mode").set_value("Average pooling").run()
    assert at.metric[0].value == "3 × 3" and not at.exception

    at.radio(key="conv_mode").set_value("Convolution").run()
    at.slider(key="conv_n").set_value(3).run()
    at.slider(key="conv_k").set_value(7).run()
    assert not at.exception
    assert "kernel spans 7 cells" in at.error[0].value
    assert not at.metric  # no formula, no player: the error says what to change

    at.slider(key="conv_n").set_value(16).run()
    at.slider(key="conv_k").set_value(1).run()
    at.slider(key="conv_p_conv").set_value(6).run()
    assert at.metric[0].value == "28 × 28" and _step_line(at).startswith("**Step 1 of 784**")
    downloads = at.get("download_button")
    assert all(d.proto.disabled for d in downloads) and "784 steps" in downloads[0].proto.help


def test_matrix_tab_shows_k_and_k_transpose() -> None:
    at = _page()
    figs = _figures(at)
    k_fig, kt_fig = figs[1], figs[2]
    assert k_fig["layout"]["title"]["text"] == "Convolution: K x = y (6 → 4)"
    K = _heatmap_text(k_fig, 0).astype(float)
    x = np.arange(1.0, 7.0)
    dense = F.conv1d(
        torch.eye(6, dtype=torch.float64)[:, None, :], torch.tensor([[[1.0, 2.0, 3.0]]], dtype=torch.float64)
    )
    np.testing.assert_array_equal(K, dense[:, 0, :].numpy().T)
    np.testing.assert_array_equal(_heatmap_text(k_fig, 2).astype(float).ravel(), K @ x)
    np.testing.assert_array_equal(_heatmap_text(kt_fig, 0).astype(float), K.T)
    at.text_input(key="conv_mat_kernel").set_value("1, two").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Type the kernel as numbers separated by commas, e.g. 1, 2, 3."]
    at.text_input(key="conv_mat_kernel").set_value(" , ").run()
    assert [e.value for e in at.error] == ["Type the kernel as numbers separated by commas, e.g. 1, 2, 3."]
    # a kernel longer than the input: the sizes are explained, the kernel as typed is not blamed
    at.text_input(key="conv_mat_kernel").set_value("1, 2, 3").run()
    at.slider(key="conv_mat_n").set_value(2).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("The kernel spans 3 cells") and "separated by commas" not in error


def test_checkerboard_tab_overlap_maps_and_image() -> None:
    at = _page()
    figs = _figures(at)
    board = figs[3]
    left, right = _heatmap_text(board, 0).astype(int), _heatmap_text(board, 1).astype(int)
    np.testing.assert_array_equal(left, ca.overlap_counts(6, 3, 2, 1, output_padding=1))
    assert set(np.unique(left[1:-1, 1:-1])) == {1, 2, 4} and set(np.unique(right[2:-2, 2:-2])) == {4}
    images = [f for f in figs if f["data"] and f["data"][0]["type"] == "image"]
    assert len(images) == 2
    caption = " ".join(c.value for c in at.caption)
    assert "kernel 3: uneven: checkerboard" in caption and "kernel 4: even overlap" in caption


@pytest.mark.browser
def test_play_runs_to_the_end_by_itself_in_a_browser(app_server, browser_factory) -> None:
    """Only a browser runs the fragment's timer: Play must advance without any further click."""
    import re

    page = browser_factory().new_page(viewport={"width": 1400, "height": 1400})
    page.goto(app_server, wait_until="domcontentloaded")
    page.locator("section[data-testid='stSidebar']").get_by_text("Convolution arithmetic").click(timeout=120_000)
    step = page.get_by_text(re.compile(r"^Step \d+ of 9"))
    step.first.wait_for(timeout=120_000)
    assert step.first.inner_text().startswith("Step 1 of 9")
    page.get_by_role("button", name=re.compile("Play")).click()
    page.get_by_text(re.compile(r"^Step 9 of 9")).first.wait_for(timeout=60_000)
    page.get_by_role("button", name=re.compile("Play")).wait_for(timeout=30_000)  # stops at the end
    page.get_by_role("button", name=re.compile("Back")).click()
    page.get_by_text(re.compile(r"^Step 8 of 9")).first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 1
