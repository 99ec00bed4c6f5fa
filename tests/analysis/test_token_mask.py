"""Real/padding status of Swin tokens (paper section 2.4), as the encoder propagates it (``networks.token_kinds``):
a token is real if any voxel or constituent it covers is real; odd sides are padded with padding before a merge;
the window padding of a feature map is its own kind."""
import pytest
import torch

from nnunet_swin.geometry.tokens import effective_window, stage_windows
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.token_kinds import (TOKEN_INPUT_PADDING, TOKEN_REAL, TOKEN_WINDOW_PADDING, embedded_kinds,
                                              merged_kinds, window_padded_kinds)


def kinds_of(real: torch.Tensor) -> torch.Tensor:
    return torch.where(real, TOKEN_REAL, TOKEN_INPUT_PADDING).to(torch.int8)


def stage_kinds(real: torch.Tensor, patch_size, num_stages: int) -> list[torch.Tensor]:
    """Kinds entering each Swin stage: patch embedding, then one 2x2x2 merge per stage after the first."""
    kinds = [embedded_kinds(real, tuple(patch_size))]
    for _ in range(num_stages - 1):
        kinds.append(merged_kinds(kinds[-1]))
    return kinds


def test_merge_marks_a_token_real_if_any_constituent_is_real():
    m = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    m[0, 1, 2, 3] = True          # a single real token lands in merged token (0, 1, 1)
    out = merged_kinds(kinds_of(m)) == TOKEN_REAL
    assert out.shape == (1, 2, 2, 2)
    assert out.sum() == 1 and out[0, 0, 1, 1]


def test_odd_sides_are_padded_with_padding():
    m = torch.ones(1, 3, 2, 2, dtype=torch.bool)
    out = merged_kinds(kinds_of(m))
    assert out.shape == (1, 2, 1, 1)
    assert (out == TOKEN_REAL).all()  # the last token still has one real slice


def test_stage_kinds_from_a_zero_padded_z_axis():
    # 64 z voxels, the scan fills the middle 24 (z 20..43); patch 2 then three merges
    m = torch.zeros(1, 64, 8, 8, dtype=torch.bool)
    m[:, 20:44] = True
    real = [k == TOKEN_REAL for k in stage_kinds(m, (2, 2, 2), 4)]
    assert [tuple(x.shape[1:]) for x in real] == [(32, 4, 4), (16, 2, 2), (8, 1, 1), (4, 1, 1)]
    assert real[0][0, :, 0, 0].nonzero().flatten().tolist() == list(range(10, 22))
    assert real[1][0, :, 0, 0].nonzero().flatten().tolist() == list(range(5, 11))
    assert real[2][0, :, 0, 0].nonzero().flatten().tolist() == [2, 3, 4, 5]
    assert real[3][0, :, 0, 0].tolist() == [False, True, True, False]


def test_window_padding_kind():
    m = torch.ones(1, 4, 5, 3, dtype=torch.bool)
    m[0, 0] = False
    k = window_padded_kinds(kinds_of(m), (7, 7, 7))
    assert k.shape == (1, 7, 7, 7) and k.dtype == torch.int8
    assert (k[0, 0, :5, :3] == TOKEN_INPUT_PADDING).all()
    assert (k[0, 1:4, :5, :3] == TOKEN_REAL).all()
    assert (k[0, 4:] == TOKEN_WINDOW_PADDING).all() and (k[0, :, 5:] == TOKEN_WINDOW_PADDING).all()
    assert (k[0, :, :, 3:] == TOKEN_WINDOW_PADDING).all()


def padding_shares(crop_size: list[int], arch_kwargs: dict) -> list[dict]:
    """Per stage, the shares of input-padding and window-padding tokens for a scan that fills the crop."""
    real = torch.ones(1, *crop_size, dtype=torch.bool)
    out = []
    for kinds in stage_kinds(real, arch_kwargs["patch_size"], len(arch_kwargs["depths"])):
        window, _ = effective_window(tuple(kinds.shape[1:]), tuple(arch_kwargs["window_size"]),
                                     arch_kwargs["shrink_window"])
        padded = window_padded_kinds(kinds, window)
        out.append({"input_pad_share": float((padded == TOKEN_INPUT_PADDING).float().mean()),
                    "window_pad_share": float((padded == TOKEN_WINDOW_PADDING).float().mean())})
    return out


def test_swin_unetr_window_artifact_shows_as_window_padding_only():
    arch = get_preset("swin_unetr")
    shares = padding_shares([64, 96, 96], arch)                       # no input padding at all
    assert all(s["input_pad_share"] == 0 for s in shares)
    assert shares[0]["window_pad_share"] > 0            # 32 x 48 x 48 tokens padded to 35 x 49 x 49
    assert shares[3]["window_pad_share"] == 0           # stage 3 (4 x 6 x 6): the window shrinks to the map
    # the torch-free arithmetic the planner reports says the same
    planned = [s.window_padding_fraction for s in stage_windows([64, 96, 96], arch)]
    assert planned == pytest.approx([s["window_pad_share"] for s in shares], abs=1e-6)
    smit = padding_shares([64, 128, 128], get_preset("smit"))
    assert all(s["window_pad_share"] == 0 for s in smit)
