import torch

from nnunet_swin.analysis.token_mask import (expected_padding_shares, pool_token_mask, stage_token_masks,
                                             window_token_kinds)


def test_merge_marks_a_token_real_if_any_constituent_is_real():
    m = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    m[0, 1, 2, 3] = True          # a single real voxel lands in merged token (0, 1, 1)
    out = pool_token_mask(m)
    assert out.shape == (1, 2, 2, 2)
    assert out.sum() == 1 and out[0, 0, 1, 1]


def test_odd_sides_are_padded_with_padding():
    m = torch.ones(1, 3, 2, 2, dtype=torch.bool)
    out = pool_token_mask(m)
    assert out.shape == (1, 2, 1, 1)
    assert out.all()              # the last token still has one real slice


def test_stage_masks_from_a_zero_padded_z_axis():
    # 64 z voxels, the scan fills the middle 24 (z 20..43); patch 2 then three merges
    m = torch.zeros(1, 64, 8, 8, dtype=torch.bool)
    m[:, 20:44] = True
    masks = stage_token_masks(m, (2, 2, 2), 4)
    assert [tuple(x.shape[1:]) for x in masks] == [(32, 4, 4), (16, 2, 2), (8, 1, 1), (4, 1, 1)]
    assert masks[0][0, :, 0, 0].nonzero().flatten().tolist() == list(range(10, 22))
    assert masks[1][0, :, 0, 0].nonzero().flatten().tolist() == list(range(5, 11))
    assert masks[2][0, :, 0, 0].nonzero().flatten().tolist() == [2, 3, 4, 5]
    assert masks[3][0, :, 0, 0].tolist() == [False, True, True, False]


def test_window_padding_kind():
    m = torch.ones(1, 4, 5, 3, dtype=torch.bool)
    m[0, 0] = False
    k = window_token_kinds(m, (7, 7, 7))
    assert k.shape == (1, 7, 7, 7)
    assert (k[0, 0, :5, :3] == 1).all()
    assert (k[0, 1:4, :5, :3] == 0).all()
    assert (k[0, 4:] == 2).all() and (k[0, :, 5:] == 2).all() and (k[0, :, :, 3:] == 2).all()


def test_swin_unetr_window_artifact_shows_as_window_padding_only():
    from nnunet_swin.networks.presets import get_preset
    arch = get_preset("swin_unetr")
    shares = expected_padding_shares([64, 96, 96], [64, 96, 96], arch)   # no input padding at all
    assert all(s["input_pad_share"] == 0 for s in shares)
    assert shares[0]["window_pad_share"] > 0            # 32 x 48 x 48 tokens padded to 35 x 49 x 49
    assert shares[3]["window_pad_share"] == 0           # stage 3 (4 x 6 x 6): the window shrinks to the map
    smit = expected_padding_shares([64, 128, 128], [64, 128, 128], get_preset("smit"))
    assert all(s["window_pad_share"] == 0 for s in smit)
