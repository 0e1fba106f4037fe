"""Tests for vizlib.kernels: hand-computed filtering, OpenCV == torch, separability, designed vs learned."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks._separable import time_separable
from tests.reference.kernels_torch import apply_torch
from vizlib import kernels as K

# The lecture's 6x6 image: bright (10) left half, dark (0) right half.
LECTURE_IMAGE = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=np.uint8)
VERTICAL = np.array([[1, 0, -1]] * 3, dtype=np.float32)
SMALL = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32)


def _rng_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# ------------------------------------------------------------------------------------------- presets


def test_presets_are_the_named_kernels() -> None:
    p = K.PRESETS
    expected_names = {
        "identity", "vertical_edge", "horizontal_edge", "sobel_x", "sobel_y", "scharr_x", "scharr_y",
        "prewitt_x", "prewitt_y", "laplacian_4", "laplacian_8", "sharpen", "box_blur", "gaussian_3x3",
        "gaussian_5x5", "emboss", "outline",
    }  # fmt: skip
    assert set(p) == expected_names
    assert set(K.PRESET_LABELS) == expected_names
    np.testing.assert_array_equal(p["vertical_edge"], [[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    np.testing.assert_array_equal(p["horizontal_edge"], [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(p["sobel_x"], [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(p["sobel_y"], [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    np.testing.assert_array_equal(p["scharr_x"], [[3, 0, -3], [10, 0, -10], [3, 0, -3]])
    np.testing.assert_array_equal(p["laplacian_4"], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(p["laplacian_8"], [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    np.testing.assert_array_equal(p["outline"], -p["laplacian_8"])
    np.testing.assert_array_equal(p["sharpen"], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert p["gaussian_5x5"].shape == (5, 5)
    assert p["gaussian_5x5"][2, 2] == pytest.approx(36 / 256)
    assert p["gaussian_5x5"][0, 0] == pytest.approx(1 / 256)


def test_presets_are_float32_read_only_and_sums_are_right() -> None:
    sums = {"identity": 1, "box_blur": 1, "gaussian_3x3": 1, "gaussian_5x5": 1, "sharpen": 1, "emboss": 1}
    for name, kernel in K.PRESETS.items():
        assert kernel.dtype == np.float32
        assert not kernel.flags.writeable
        assert kernel.sum() == pytest.approx(sums.get(name, 0), abs=1e-6), name
    with pytest.raises(ValueError):
        K.PRESETS["sobel_x"][0, 0] = 5


# ----------------------------------------------------------------------------- apply, hand-computed


def test_lecture_example_valid_gives_30s_at_the_edge() -> None:
    result = K.apply(LECTURE_IMAGE, VERTICAL)
    valid = K.crop_valid(result, VERTICAL)
    assert valid.shape == (4, 4)  # n - f + 1
    np.testing.assert_array_equal(valid, [[0, 30, 30, 0]] * 4)


def test_lecture_example_with_zero_padding_by_hand() -> None:
    # out[y, x] = sum over the rows in the window of (left neighbour - right neighbour); zeros outside.
    # Column term: x=0: 0-10, x=1: 10-10, x=2: 10-0, x=3: 10-0, x=4: 0-0, x=5: 0-0 -> [-10, 0, 10, 10, 0, 0];
    # times 2 rows on the top/bottom line, 3 rows elsewhere.
    edge_row = [-20, 0, 20, 20, 0, 0]
    middle_row = [-30, 0, 30, 30, 0, 0]
    expected = np.array([edge_row] + [middle_row] * 4 + [edge_row], dtype=np.float32)
    result = K.apply(LECTURE_IMAGE, VERTICAL, border="zero")
    assert result.dtype == np.float32
    assert result.shape == (6, 6)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(apply_torch(LECTURE_IMAGE, VERTICAL, border="zero"), expected)
    # True convolution flips the kernel left-right, so every response changes sign.
    np.testing.assert_array_equal(K.apply(LECTURE_IMAGE, VERTICAL, mode="convolve"), -expected)


def test_lecture_example_scale_and_bias() -> None:
    result = K.apply(LECTURE_IMAGE, VERTICAL, scale=0.5, bias=1.0)
    np.testing.assert_array_equal(result[2], [-14, 1, 16, 16, 1, 1])


@pytest.mark.parametrize(
    ("border", "expected"),
    [
        # zero: x=0 -> -(I[r,1]) summed over rows in the window; x=1 -> -2 per row; x=2 -> +I[r,1].
        ("zero", [[-7, -4, 7], [-15, -6, 15], [-13, -4, 13]]),
        # replicate: columns pad as 1|1 2 3|3 (plus 3 per row), so (left - right) = -1, -2, -1 per row.
        ("replicate", [[-3, -6, -3]] * 3),
        # reflect: columns pad as 2|1 2 3|2, so (left - right) = 0, -2, 0 per row.
        ("reflect", [[0, -6, 0]] * 3),
    ],
)
def test_borders_by_hand(border: str, expected: list[list[float]]) -> None:
    np.testing.assert_array_equal(K.apply(SMALL, VERTICAL, border=border), expected)
    np.testing.assert_array_equal(apply_torch(SMALL, VERTICAL, border=border), expected)


def test_correlate_is_not_convolve_for_asymmetric_kernel() -> None:
    image = np.zeros((5, 5), dtype=np.float32)
    image[2, 2] = 1.0  # an impulse: correlation paints the kernel rotated by 180 degrees, convolution as is
    kernel = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    np.testing.assert_array_equal(K.apply(image, kernel, mode="correlate")[1:4, 1:4], kernel[::-1, ::-1])
    np.testing.assert_array_equal(K.apply(image, kernel, mode="convolve")[1:4, 1:4], kernel)


def test_gray_uses_bt601_luma_and_per_channel_keeps_channels() -> None:
    image = np.zeros((3, 3, 3), dtype=np.uint8)
    image[..., 0] = 200
    image[..., 1] = 100
    image[..., 2] = 50
    gray = K.apply(image, K.PRESETS["identity"])
    assert gray.shape == (3, 3)
    np.testing.assert_allclose(gray, 0.299 * 200 + 0.587 * 100 + 0.114 * 50, rtol=1e-6)
    per = K.apply(image, K.PRESETS["identity"], color="per_channel")
    assert per.shape == (3, 3, 3)
    np.testing.assert_array_equal(per, image.astype(np.float32))
    # Per channel: each channel filtered alone, with the replicate border leaving a constant image alone.
    blurred = K.apply(image, K.PRESETS["box_blur"], color="per_channel", border="replicate")
    np.testing.assert_allclose(blurred, image.astype(np.float32), rtol=1e-6)


def test_constant_image_responses() -> None:
    image = np.full((7, 7), 10, dtype=np.uint8)
    for name in ("laplacian_4", "laplacian_8", "sobel_x", "sobel_y", "emboss", "outline"):
        expected = 10.0 * K.PRESETS[name].sum()
        np.testing.assert_allclose(K.apply(image, K.PRESETS[name], border="reflect"), expected, atol=1e-5)
    np.testing.assert_allclose(K.apply(image, K.PRESETS["sharpen"], border="replicate"), 10.0, atol=1e-5)


def test_single_channel_image_is_gray() -> None:
    image = SMALL[:, :, None]
    np.testing.assert_array_equal(K.apply(image, VERTICAL, color="per_channel"), K.apply(SMALL, VERTICAL))


# ------------------------------------------------------------------------------------ OpenCV == torch


@pytest.mark.parametrize("color", K.COLORS)
@pytest.mark.parametrize("border", K.BORDERS)
def test_opencv_equals_torch_for_every_preset(border: str, color: str) -> None:
    image = _rng_image((23, 31, 3), seed=1)  # values in [0, 1), as a network sees them
    for name, kernel in K.PRESETS.items():
        for mode in K.MODES:
            cv = K.apply(image, kernel, mode=mode, border=border, color=color, scale=1.5, bias=-0.25)
            th = apply_torch(image, kernel, mode=mode, border=border, color=color, scale=1.5, bias=-0.25)
            assert cv.shape == th.shape == ((23, 31) if color == "gray" else (23, 31, 3))
            assert cv.dtype == th.dtype == np.float32
            np.testing.assert_allclose(cv, th, rtol=0, atol=1e-4, err_msg=f"{name} {mode}")


def test_opencv_equals_torch_on_a_uint8_photo_and_odd_rectangular_kernel() -> None:
    image = (np.random.default_rng(2).random((40, 50, 3)) * 255).astype(np.uint8)
    kernel = np.random.default_rng(3).normal(size=(3, 7)).astype(np.float32)
    for border in K.BORDERS:
        cv = K.apply(image, kernel, border=border, color="per_channel")
        th = apply_torch(image, kernel, border=border, color="per_channel")
        np.testing.assert_allclose(cv, th, rtol=1e-5, atol=1e-3)


def test_uint8_and_float32_inputs_give_identical_results() -> None:
    image = (np.random.default_rng(7).random((30, 40, 3)) * 255).astype(np.uint8)
    for border in K.BORDERS:
        for color in K.COLORS:
            for kernel in (K.PRESETS["sobel_x"], K.PRESETS["gaussian_5x5"]):
                np.testing.assert_array_equal(
                    K.apply(image, kernel, border=border, color=color),
                    K.apply(image.astype(np.float32), kernel, border=border, color=color),
                )


def test_torch_path_is_a_conv_layer() -> None:
    image = _rng_image((9, 11), seed=4)
    layer = torch.nn.Conv2d(1, 1, 3, padding=1, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(K.PRESETS["sobel_x"].copy())[None, None])
        layer.bias.fill_(0.5)
        expected = layer(torch.from_numpy(image)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(K.apply(image, K.PRESETS["sobel_x"], bias=0.5), expected, atol=1e-6)


# ------------------------------------------------------------------------------------------ gradients


def test_gradient_on_a_vertical_step() -> None:
    g = K.gradient(LECTURE_IMAGE, border="replicate")
    # Sobel x on the edge columns: (10 - 0) * (1 + 2 + 1) = 40; Sobel y sees no change.
    np.testing.assert_array_equal(g.gx[:, 2:4], 40)
    np.testing.assert_array_equal(g.gx[:, [0, 1, 4, 5]], 0)
    np.testing.assert_array_equal(g.gy, 0)
    np.testing.assert_array_equal(g.magnitude, np.abs(g.gx))
    assert g.orientation[0, 2] == pytest.approx(0.0)


def test_gradient_from_responses_magnitude_and_orientation() -> None:
    g = K.gradient_from_responses(np.array([[3.0, 0.0, -1.0]]), np.array([[4.0, 2.0, 0.0]]))
    np.testing.assert_allclose(g.magnitude, [[5.0, 2.0, 1.0]])
    np.testing.assert_allclose(g.orientation, [[math.atan2(4, 3), math.pi / 2, math.pi]])
    with pytest.raises(K.FilterInputError):
        K.gradient_from_responses(np.zeros((2, 2)), np.zeros((2, 3)))


def test_gradient_per_channel_keeps_channels() -> None:
    image = np.zeros((6, 6, 3), dtype=np.uint8)
    image[:, :3, 1] = 10  # a vertical step in green only
    g = K.gradient(image, color="per_channel", border="replicate")
    assert g.magnitude.shape == (6, 6, 3)
    np.testing.assert_array_equal(g.magnitude[:, 2:4, 1], 40)
    np.testing.assert_array_equal(g.magnitude[..., [0, 2]], 0)


def test_gradient_default_y_kernel_is_transpose() -> None:
    image = _rng_image((12, 12), seed=5)
    g = K.gradient(image, K.PRESETS["scharr_x"])
    np.testing.assert_allclose(g.gy, K.apply(image, K.PRESETS["scharr_y"]), atol=1e-6)


# ------------------------------------------------------------------------------------------ separable


def test_sobel_separates_into_121_and_10m1() -> None:
    split = K.separate(K.PRESETS["sobel_x"])
    assert split.separable
    assert split.rank == 1
    np.testing.assert_array_equal(split.column, [1, 2, 1])
    np.testing.assert_array_equal(split.row, [1, 0, -1])
    assert (split.full_multiplications, split.separable_multiplications) == (9, 6)
    assert split.saving == pytest.approx(1.5)


def test_gaussian_5x5_separates_into_binomials() -> None:
    split = K.separate(K.PRESETS["gaussian_5x5"])
    np.testing.assert_array_equal(split.row, [1, 4, 6, 4, 1])
    np.testing.assert_allclose(split.column, np.array([1, 4, 6, 4, 1]) / 256)
    np.testing.assert_allclose(np.outer(split.column, split.row), K.PRESETS["gaussian_5x5"], atol=1e-8)
    assert (split.full_multiplications, split.separable_multiplications) == (25, 10)


def test_float32_rounding_does_not_break_separability() -> None:
    row = np.array([math.comb(30, i) for i in range(31)], dtype=np.float64)
    binomial = (np.outer(row, row) / row.sum() ** 2).astype(np.float32)  # 31x31, float32-rounded
    split = K.separate(binomial)
    assert split.rank == 1
    np.testing.assert_allclose(np.outer(split.column, split.row), binomial, rtol=0, atol=1e-9)
    assert (split.full_multiplications, split.separable_multiplications) == (961, 62)
    odd = np.outer([0.3, 0.7, 0.1], [1.5, -2.2, 0.4]).astype(np.float32)
    assert K.separate(odd).separable
    odd[0, 0] += 1e-3  # a real (if small) second component
    assert K.separate(odd).rank == 2


def test_rank_two_kernel_is_not_separable() -> None:
    split = K.separate(K.PRESETS["laplacian_4"])  # sum of two rank-one kernels
    assert split.rank == 2
    assert not split.separable
    assert split.column is None and split.row is None
    assert split.separable_multiplications is None and split.saving is None
    with pytest.raises(K.NotSeparableError):
        time_separable(np.zeros((10, 10)), K.PRESETS["laplacian_4"], repeats=1)


def test_time_separable_measures_both_ways_with_equal_results() -> None:
    image = (np.random.default_rng(6).random((64, 80, 3)) * 255).astype(np.uint8)
    timing = time_separable(image, K.PRESETS["gaussian_5x5"], border="reflect", repeats=3)
    assert timing.full_ms > 0 and timing.separable_ms > 0
    assert timing.max_abs_difference < 1e-3
    assert (timing.full_multiplications, timing.separable_multiplications) == (25, 10)
    assert timing.speedup == pytest.approx(timing.full_ms / timing.separable_ms)


# -------------------------------------------------------------------------------- designed vs learned


def _constructed_weight() -> torch.Tensor:
    """Five filters over 3 input channels whose gray sums are known kernels."""
    v = torch.tensor(K.PRESETS["vertical_edge"])
    h = torch.tensor(K.PRESETS["horizontal_edge"])
    s = torch.tensor(K.PRESETS["sobel_x"])
    ident = torch.tensor(K.PRESETS["identity"])
    noise = torch.tensor([[0.5, -1.0, 2.0], [0.0, 1.0, -3.0], [1.0, 1.0, 1.0]])
    w = torch.zeros(5, 3, 3, 3)
    w[0, 0] = h  # gray sum: horizontal edge
    w[1] = s / 3  # gray sum: Sobel x
    w[2, 0], w[2, 1], w[2, 2] = -v, noise, -noise  # gray sum: the inverted vertical edge
    w[3, 1] = ident  # gray sum: identity
    # w[4] stays zero (a dead filter)
    return w


def test_collapse_to_gray_sums_input_channels() -> None:
    gray = K.collapse_to_gray(_constructed_weight())
    assert gray.shape == (5, 3, 3)
    np.testing.assert_allclose(gray[1], K.PRESETS["sobel_x"], atol=1e-6)
    np.testing.assert_allclose(gray[2], -K.PRESETS["vertical_edge"], atol=1e-6)


def test_match_filters_exact_ranking_ignoring_sign() -> None:
    matches = K.match_filters(_constructed_weight(), K.PRESETS["vertical_edge"], top_k=None)
    # |cos|: inverted vertical edge 1, Sobel x 8 / sqrt(6 * 12), then three zeros in channel order.
    np.testing.assert_array_equal(matches.indices, [2, 1, 0, 3, 4])
    np.testing.assert_allclose(matches.similarities, [-1.0, 8 / math.sqrt(72), 0.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(matches.filters[1], K.PRESETS["sobel_x"], atol=1e-6)
    assert matches.ignore_sign


def test_match_filters_signed_and_top_k() -> None:
    matches = K.match_filters(_constructed_weight(), K.PRESETS["vertical_edge"], top_k=2, ignore_sign=False)
    np.testing.assert_array_equal(matches.indices, [1, 0])
    np.testing.assert_allclose(matches.similarities, [8 / math.sqrt(72), 0.0], atol=1e-6)
    all_signed = K.match_filters(_constructed_weight(), K.PRESETS["vertical_edge"], top_k=None, ignore_sign=False)
    assert all_signed.indices[-1] == 2


def test_match_filters_resizes_to_a_common_size() -> None:
    # 7x7 learned filters (as in ResNet's first layer) against a 3x3 designed kernel.
    step = np.zeros((7, 7))
    step[:, :3], step[:, 4:] = 1.0, -1.0
    w = np.zeros((3, 3, 7, 7))
    w[0, 0] = step.T  # horizontal edge
    w[1, 2] = -step  # inverted vertical edge
    w[2, 1] = step  # vertical edge
    matches = K.match_filters(w, K.PRESETS["sobel_x"], top_k=None)
    np.testing.assert_array_equal(matches.indices, [1, 2, 0])
    assert matches.similarities[0] == pytest.approx(-matches.similarities[1])
    assert matches.similarities[1] > 0.9
    assert matches.similarities[2] == pytest.approx(0.0, abs=1e-9)
    assert matches.filters.shape == (3, 7, 7)
    # The other way round: a 5x5 designed kernel against 3x3 learned filters.
    small = K.match_filters(_constructed_weight(), K.PRESETS["gaussian_5x5"], top_k=1)
    assert small.indices[0] == 3  # the identity is the most blur-like (a centred bump)


def test_first_conv_weight_is_a_detached_copy() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    weight = K.first_conv_weight(model)
    assert weight.shape == (4, 3, 5, 5)
    assert not weight.requires_grad
    assert torch.equal(weight, model[0].weight.detach())
    weight.zero_()
    assert model[0].weight.abs().sum() > 0  # the model was not touched
    with pytest.raises(K.FilterInputError):
        K.first_conv_weight(torch.nn.Linear(2, 2))


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kernel", "error"),
    [
        (np.ones(3), K.KernelShapeError),
        (np.ones((3, 3, 3)), K.KernelShapeError),
        (np.ones((0, 3)), K.KernelShapeError),
        (np.ones((2, 2)), K.EvenKernelError),
        (np.ones((3, 4)), K.EvenKernelError),
        (np.array([[1.0, np.nan, 0.0]] * 3), K.KernelValueError),
        (np.array([[1.0, np.inf, 0.0]] * 3), K.KernelValueError),
        ([["a", "b", "c"]] * 3, K.KernelValueError),
        (np.ones((33, 33)), K.KernelTooLargeError),
    ],
)
def test_bad_kernels_raise_clear_errors(kernel: object, error: type[Exception]) -> None:
    for fn in (K.apply, apply_torch):
        with pytest.raises(error) as info:
            fn(np.zeros((40, 40)), kernel)
        assert isinstance(info.value, K.KernelError)
        assert isinstance(info.value, ValueError)
        assert len(str(info.value)) > 20


def test_even_kernels_are_fine_where_no_centre_is_needed() -> None:
    roberts = np.array([[1.0, 0.0], [0.0, -1.0]])
    assert K.separate(roberts).rank == 2
    assert K.separate(np.ones((2, 4))).separable
    matches = K.match_filters(_constructed_weight(), roberts, top_k=1)
    assert matches.indices.shape == (1,)


def test_bad_images_options_and_weights() -> None:
    kernel = K.PRESETS["sobel_x"]
    with pytest.raises(K.FilterInputError):
        K.apply(np.zeros((5, 5, 4)), kernel)  # RGBA
    with pytest.raises(K.FilterInputError):
        K.apply(np.zeros(5), kernel)
    with pytest.raises(K.FilterInputError):
        K.apply(np.full((5, 5), np.nan), kernel)
    with pytest.raises(K.FilterInputError):
        K.apply(np.array([["x"] * 5] * 5), kernel)
    with pytest.raises(K.FilterInputError):
        K.apply(np.ones((5, 5), dtype=complex), kernel)
    with pytest.raises(K.KernelValueError):
        K.apply(np.ones((5, 5)), kernel, scale=1e39)
    with pytest.raises(K.KernelTooLargeError):
        K.apply(np.zeros((4, 40)), K.PRESETS["gaussian_5x5"])  # image smaller than the kernel
    for option in ({"mode": "conv"}, {"border": "wrap"}, {"color": "rgb"}, {"scale": float("nan")}, {"bias": "1"}):
        with pytest.raises(K.FilterInputError):
            K.apply(np.zeros((5, 5)), kernel, **option)
    with pytest.raises(K.FilterInputError):
        K.collapse_to_gray(np.zeros((3, 3, 3)))
    with pytest.raises(K.KernelValueError):
        K.match_filters(_constructed_weight(), np.zeros((3, 3)))
    with pytest.raises(K.FilterInputError):
        K.match_filters(_constructed_weight(), kernel, top_k=0)
    with pytest.raises(K.FilterInputError):
        time_separable(np.zeros((10, 10)), kernel, repeats=0)
