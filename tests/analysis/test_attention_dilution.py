import math
from types import SimpleNamespace

import pytest
import torch

from nnunet_swin.analysis.attention_dilution import (AttentionDilutionMeter, attention_dilution_sums,
                                                     reduce_cells)


def _kinds(windows, n, n_input=0, n_window=0):
    k = torch.zeros(windows, n, dtype=torch.int8)
    k[:, n - n_input - n_window:n - n_window] = 1
    k[:, n - n_window:] = 2
    return k


def _event(attn, kinds, stage=0, block=0):
    return SimpleNamespace(stage=stage, block=block, shifted=False, window=(7, 7, 7), attn=attn, token_kind=kinds)


def test_uniform_attention_gives_the_padding_share_of_keys():
    n, p = 343, 49
    attn = torch.full((3, 2, n, n), 1.0 / n)
    kinds = _kinds(3, n, n_input=p)
    r = reduce_cells(attention_dilution_sums(attn, kinds)[0].numpy())
    assert r.adi == pytest.approx(p / n, abs=1e-6)
    assert r.adi_input == pytest.approx(p / n, abs=1e-6)
    assert r.adi_window == 0.0
    assert r.mass_input == pytest.approx(p / n, abs=1e-6)


def test_window_padding_is_reported_separately():
    n = 64
    attn = torch.full((2, 1, n, n), 1.0 / n)
    kinds = _kinds(2, n, n_input=8, n_window=16)
    r = reduce_cells(attention_dilution_sums(attn, kinds)[0].numpy())
    assert r.adi_input == pytest.approx(8 / 64, abs=1e-6)
    assert r.adi_window == pytest.approx(16 / 64, abs=1e-6)
    assert r.adi == pytest.approx(24 / 64, abs=1e-6)
    assert r.mass_window == pytest.approx(16 / 64, abs=1e-6)


def test_no_padding_gives_zero():
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(4, 3, 27, 27) * 2, dim=-1)
    r = reduce_cells(attention_dilution_sums(attn, _kinds(4, 27))[0].numpy())
    assert r.adi == 0.0 and r.mass_input == 0.0 and r.mass_window == 0.0


def test_one_hot_attention_is_nan_not_an_error():
    n = 8
    attn = torch.zeros(2, 1, n, n)
    attn[..., 0] = 1.0            # every query attends to key 0 only: zero entropy
    r = reduce_cells(attention_dilution_sums(attn, _kinds(2, n, n_input=3))[0].numpy())
    assert math.isnan(r.adi)
    assert r.mass_input == 0.0    # the mass is still defined


def test_exact_zeros_in_softmax_do_not_give_nan():
    n = 10
    logits = torch.randn(1, 1, n, n)
    logits[..., -3:] = -1e4       # float32 softmax underflows to exact 0 on these keys
    attn = torch.softmax(logits, dim=-1)
    assert (attn == 0).any()
    r = reduce_cells(attention_dilution_sums(attn, _kinds(1, n, n_input=3))[0].numpy())
    assert r.adi == pytest.approx(0.0, abs=1e-12)
    assert not math.isnan(r.adi)


def test_pad_sink_takes_mass_but_little_entropy():
    n, p = 343, 49
    attn = torch.full((1, 1, n, n), 0.1 / (n - 1))
    attn[..., n - 1] = 0.9        # one pad key is a sink
    r = reduce_cells(attention_dilution_sums(attn, _kinds(1, n, n_input=p))[0].numpy())
    assert r.mass_input == pytest.approx(0.9 + 0.1 * (p - 1) / (n - 1), rel=1e-5)
    assert r.adi < r.mass_input / 3  # entropy share far below the mass share


def test_padding_queries_are_excluded():
    n = 16
    attn = torch.full((1, 1, n, n), 1.0 / n)
    attn[0, 0, -4:] = 0.0
    attn[0, 0, -4:, -1] = 1.0     # pad queries: one-hot on a pad key, must not matter
    kinds = _kinds(1, n, n_input=4)
    sums = attention_dilution_sums(attn, kinds)[0, 0].numpy()
    assert sums[5] == 12          # only real queries counted
    assert reduce_cells(sums).adi == pytest.approx(4 / 16, abs=1e-6)


def test_pooling_sums_then_divides_within_a_cell_and_averages_cells():
    # two windows in one (block, head): one with 50% pad keys, one without; pooled = sum/sum, not mean of ratios
    n = 4
    attn = torch.full((2, 1, n, n), 1.0 / n)
    kinds = torch.tensor([[0, 0, 1, 1], [0, 0, 0, 0]], dtype=torch.int8)
    r = reduce_cells(attention_dilution_sums(attn, kinds)[0].numpy())
    h = math.log(4) / 4
    expected = (2 * 2 * h) / (2 * 4 * h + 4 * 4 * h)   # 2 real queries x 2 pad keys over 6 real queries x 4 keys
    assert r.adi == pytest.approx(expected, abs=1e-9)
    assert r.adi != pytest.approx(0.25, abs=1e-3)       # the mean of per-window ratios would be 0.25


def test_meter_splits_scans_and_averages_blocks_and_heads():
    n = 8
    meter = AttentionDilutionMeter()
    meter.start_batch(["a", "b"])
    attn = torch.full((4, 2, n, n), 1.0 / n)           # 2 scans x 2 windows
    kinds = torch.zeros(4, n, dtype=torch.int8)
    kinds[2:, -4:] = 1                                  # scan b's windows are half padding
    meter(_event(attn, kinds, stage=1, block=0))
    meter(_event(attn, kinds, stage=1, block=1))
    res = meter.results()
    assert res["a"][1].adi == 0.0
    assert res["b"][1].adi == pytest.approx(0.5, abs=1e-6)
    assert res["b"][1].real_queries == 2 * 4


def test_meter_refuses_duplicates_and_missing_batch():
    meter = AttentionDilutionMeter()
    with pytest.raises(RuntimeError):
        meter(_event(torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 2, dtype=torch.int8)))
    meter.start_batch(["a"])
    with pytest.raises(ValueError):
        meter.start_batch(["a"])


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="windows"):
        attention_dilution_sums(torch.zeros(3, 1, 4, 4), torch.zeros(3, 4), scans=2)
    with pytest.raises(ValueError, match="token_kind"):
        attention_dilution_sums(torch.zeros(3, 1, 4, 4), torch.zeros(3, 5))


def test_fully_padded_windows_are_skipped_without_changing_any_scan():
    torch.manual_seed(3)
    n = 8
    attn = torch.softmax(torch.randn(6, 2, n, n) * 3, dim=-1)      # 3 scans x 2 windows
    kinds = torch.zeros(6, n, dtype=torch.int8)
    kinds[1, :] = 1                                                 # scan 0, window 1: padding only
    kinds[2, -3:] = 1
    kinds[5, -2:] = 2
    sums = attention_dilution_sums(attn, kinds, scans=3)
    for scan in range(3):
        w = slice(2 * scan, 2 * scan + 2)
        alone = attention_dilution_sums(attn[w], kinds[w], scans=1)[0]
        assert torch.allclose(sums[scan], alone, rtol=1e-6, atol=1e-9)
    only_real = attention_dilution_sums(attn[0:1], kinds[0:1])[0]
    assert torch.allclose(sums[0], only_real, rtol=1e-6, atol=1e-9)   # the padded window adds nothing


def test_pooled_eq7_and_mean_over_windows_are_both_reported():
    """Uniform attention over 4 keys in two windows: an all-real window (ADI 0) and a window of one real and three
    padding tokens (ADI 3/4). Eq. 7 pools the 5 real queries: 0.75 / (4 + 0.25 + 0.75) = 0.15; the
    mean-over-windows reading gives (0 + 0.75) / 2 = 0.375."""
    attn = torch.full((2, 1, 4, 4), 0.25)
    kinds = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 1]])
    r = reduce_cells(attention_dilution_sums(attn, kinds)[0].numpy())
    assert r.adi == pytest.approx(0.15, abs=1e-6)
    assert r.adi_window_mean == pytest.approx(0.375, abs=1e-6)
