"""Declared input conventions: equivalent declarations agree, contradictions are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restac_ros.core.images import resize_tactile
from restac_ros.tactile.inputs import (
    InputConventionError,
    action_to_canonical,
    tactile_to_canonical,
    views_to_canonical,
)
from restac_ros.tactile.wrapper import ResidualVQVAEWrapper

RNG = np.random.default_rng(0)
TAC_U8 = RNG.integers(0, 256, (2, 128, 160, 3), dtype=np.uint8)
VIEWS_U8 = RNG.integers(0, 256, (2, 3, 224, 224, 3), dtype=np.uint8)
ACT = (0.01 * RNG.standard_normal((2, 7))).astype(np.float32)


def test_equivalent_declarations_give_identical_model_inputs():
    ref = tactile_to_canonical(TAC_U8, "HWC", "uint8")
    assert ref.shape == (2, 3, 128, 160) and ref.dtype == torch.float32
    assert float(ref.min()) >= -1 and float(ref.max()) <= 1
    chw_unit = np.transpose(TAC_U8, (0, 3, 1, 2)).astype(np.float32) / 255.0
    torch.testing.assert_close(tactile_to_canonical(chw_unit, "CHW", "[0,1]"), ref)
    hwc_signed = torch.from_numpy(TAC_U8.astype(np.float32) / 255.0 * 2 - 1)
    torch.testing.assert_close(tactile_to_canonical(hwc_signed, "HWC", "[-1,1]"), ref)
    vref = views_to_canonical(VIEWS_U8, "HWC", "uint8", 3)
    assert vref.shape == (2, 3, 3, 224, 224)
    vchw = np.transpose(VIEWS_U8, (0, 1, 4, 2, 3)).astype(np.float32) / 127.5 - 1
    torch.testing.assert_close(views_to_canonical(vchw, "CHW", "[-1,1]", 3), vref)
    # view order is kept: view 1 of the output is view 1 of the input
    torch.testing.assert_close(vref[:, 1, 0], torch.from_numpy(VIEWS_U8[:, 1, ..., 0]) / 127.5 - 1)


def test_gelsight_size_goes_through_shared_resize():
    big = RNG.integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    got = tactile_to_canonical(big, "HWC", "uint8")
    want = np.stack([resize_tactile(im) for im in big]).astype(np.float32) / 255 * 2 - 1
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), want, atol=1e-6)
    got_chw = tactile_to_canonical(np.transpose(big, (0, 3, 1, 2)), "CHW", "uint8")
    torch.testing.assert_close(got_chw, got)


@pytest.mark.parametrize("x,layout,rng,fragment", [
    (TAC_U8.astype(np.float32), "HWC", "uint8", "declared uint8 but dtype"),
    (TAC_U8, "HWC", "[0,1]", "declared float range [0,1] but dtype"),
    (TAC_U8.astype(np.float32), "HWC", "[0,1]", "declared range [0,1] but values span"),
    (TAC_U8.astype(np.float32) / 255.0, "HWC", "[-1,1]", None),  # [0,1] data is valid [-1,1]
    (TAC_U8, "CHW", "uint8", "declared CHW but shape"),
    (np.transpose(TAC_U8, (0, 3, 1, 2)), "HWC", "uint8", "declared HWC but shape"),
    (TAC_U8[0], "HWC", "uint8", "expected a batch"),
    (np.zeros((1, 240, 320, 3), np.float32), "HWC", "[-1,1]", "only done for uint8"),
    (np.full((1, 128, 160, 3), np.nan, np.float32), "HWC", "[-1,1]", "non-finite"),
    (TAC_U8, "NHWC", "uint8", "layout must be one of"),
    (TAC_U8, "HWC", "0-255", "value range must be one of"),
    (TAC_U8.tolist(), "HWC", "uint8", "numpy array or torch tensor"),
])
def test_tactile_rejections(x, layout, rng, fragment):
    if fragment is None:
        tactile_to_canonical(x, layout, rng)
        return
    with pytest.raises(InputConventionError, match=None) as err:
        tactile_to_canonical(x, layout, rng)
    assert fragment in str(err.value)
    assert "tactile" in str(err.value)


def test_view_and_action_rejections():
    with pytest.raises(InputConventionError, match="views base, left wrist, right wrist"):
        views_to_canonical(VIEWS_U8[:, :2], "HWC", "uint8", 3)
    with pytest.raises(InputConventionError, match="declared CHW"):
        views_to_canonical(VIEWS_U8, "CHW", "uint8", 3)
    with pytest.raises(InputConventionError, match="declared range"):
        views_to_canonical(VIEWS_U8.astype(np.float32), "HWC", "[-1,1]", 3)
    with pytest.raises(InputConventionError, match=r"expected \[B, 7\]"):
        action_to_canonical(np.zeros((2, 8), np.float32), 7)
    with pytest.raises(InputConventionError, match="float"):
        action_to_canonical(np.zeros((2, 7), np.int64), 7)


def test_wrapper_forward_conventions(small_ckpt):
    with pytest.raises(InputConventionError, match="layout must be one of"):
        ResidualVQVAEWrapper(small_ckpt, tactile_layout="auto", tactile_range="uint8",
                             visual_layout="HWC", visual_range="uint8")
    w = ResidualVQVAEWrapper(small_ckpt, tactile_layout="HWC", tactile_range="uint8",
                             visual_layout="HWC", visual_range="uint8", device="cpu")
    out = w.forward(TAC_U8, VIEWS_U8, ACT)
    assert out.codes.shape == (2, 1) and out.codes.dtype == torch.int64
    assert out.q_event.shape == (2, 64) and out.logvar.shape == (2, 1)
    assert out.mu.shape == out.z_real.shape == (2, 3, 16, 20) and out.h_event.shape == (2, 64)
    w2 = ResidualVQVAEWrapper(small_ckpt, tactile_layout="CHW", tactile_range="[0,1]",
                              visual_layout="CHW", visual_range="[-1,1]", device="cpu")
    out2 = w2(np.transpose(TAC_U8, (0, 3, 1, 2)).astype(np.float32) / 255.0,
              np.transpose(VIEWS_U8, (0, 1, 4, 2, 3)).astype(np.float32) / 127.5 - 1, ACT)
    torch.testing.assert_close(out2.q_event, out.q_event, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out2.logvar, out.logvar, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="batch sizes differ"):
        w.forward(TAC_U8[:1], VIEWS_U8, ACT)
