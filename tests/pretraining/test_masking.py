"""Block masks: exact ratio and geometry; attention-guided masking picks the most attended blocks."""
import math

import pytest
import torch

from nnunet_swin.pretraining.masking import (attention_guided_mask, attention_to_blocks, block_grid, masked_count,
                                             random_block_mask, to_resolution)


def test_smit_geometry_96_cube_masks_152_of_216_blocks_per_view():
    grid = block_grid((96, 96, 96), 16)
    assert grid == (6, 6, 6)
    assert masked_count(216, 0.7) == 152 == math.ceil(216 * 0.7)
    m = random_block_mask(5, grid, 0.7, generator=torch.Generator().manual_seed(0))
    assert m.shape == (5, 6, 6, 6) and m.dtype == torch.bool
    assert m.flatten(1).sum(1).tolist() == [152] * 5
    assert len({tuple(x.flatten().tolist()) for x in m}) == 5       # independent per sample / view


def test_block_grid_refuses_a_crop_that_is_not_a_multiple_of_the_block():
    with pytest.raises(ValueError):
        block_grid((96, 96, 40), 16)


def test_block_mask_on_voxels_is_whole_16_cubes_and_on_stage3_tokens_one_to_one():
    m = random_block_mask(2, (2, 2, 2), 0.5, generator=torch.Generator().manual_seed(3))
    vox = to_resolution(m, (32, 32, 32))
    for b in range(2):
        for i in range(2):
            for j in range(2):
                for k in range(2):
                    cube = vox[b, 16 * i:16 * i + 16, 16 * j:16 * j + 16, 16 * k:16 * k + 16]
                    assert bool(cube.all()) == bool(m[b, i, j, k]) and bool(cube.any()) == bool(m[b, i, j, k])
    assert torch.equal(to_resolution(m, (2, 2, 2)), m)
    assert vox.float().mean().item() == pytest.approx(m.float().mean().item())


def test_attention_guided_mask_takes_the_top_attended_blocks():
    g = torch.Generator().manual_seed(0)
    att = torch.rand(3, 4, 4, 4, generator=g)
    k = masked_count(64, 0.5)
    m = attention_guided_mask(att, 0.5, random_share=0.0)
    for b in range(3):
        top = set(att[b].flatten().argsort(descending=True)[:k].tolist())
        assert set(m[b].flatten().nonzero()[:, 0].tolist()) == top


def test_attention_guided_mask_mixes_a_random_share_and_keeps_the_exact_count():
    att = torch.arange(64, dtype=torch.float32).view(1, 4, 4, 4)  # block 63 most attended
    k = masked_count(64, 0.5)                                       # 32
    m = attention_guided_mask(att, 0.5, random_share=0.25, generator=torch.Generator().manual_seed(1))
    chosen = set(m.flatten().nonzero()[:, 0].tolist())
    assert len(chosen) == k
    top = set(range(64 - (k - 8), 64))                              # 24 most attended
    assert top <= chosen and len(chosen - top) == 8                 # plus 8 random others


def test_attention_to_blocks_keeps_the_mass_and_locates_it():
    a = torch.zeros(1, 4, 4, 4)
    a[0, 3, 3, 2] = 1.0
    blocks = attention_to_blocks(a, (2, 2, 2))
    assert blocks.sum().item() == pytest.approx(1.0)
    assert blocks[0, 1, 1, 1].item() == pytest.approx(1.0)


def test_smart_guided_masks_follow_ibot_masking():
    """--masking ibot with SMART's attention-guided masks: some views unmasked, the others at iBOT's ratios (it used to
    be ignored: every view got --mask-ratio 0.7)."""
    from nnunet_swin.pretraining.methods.base import StepInputs
    from nnunet_swin.pretraining.methods.smart import SMART
    from nnunet_swin.pretraining.settings import PretrainConfig

    batch, grid = 16, (4, 4, 4)
    att = torch.rand(2 * batch, 2, 64, generator=torch.Generator().manual_seed(0))
    t = {"attention": att.softmax(-1), "grid": grid}
    inputs = StepInputs(x=torch.zeros(2 * batch, 1, 8, 8, 8), voxel_valid=torch.ones(2 * batch, 8, 8, 8, dtype=bool),
                        batch=batch, step=0, temperatures={},
                        generator=lambda k: torch.Generator().manual_seed(k))
    shares = {}
    for masking in ("smit", "ibot"):
        m = SMART(PretrainConfig(method="smart", masking=masking)).masks(t, inputs, grid)
        shares[masking] = m.flatten(1).float().mean(1)
    assert torch.all(shares["smit"] == masked_count(64, 0.7) / 64)
    ibot = shares["ibot"]
    assert (ibot == 0).sum() >= 4 and (ibot > 0).sum() >= 4            # about half of 32 views unmasked
    assert ibot.max() <= masked_count(64, 0.5) / 64 and ibot[ibot > 0].min() >= masked_count(64, 0.1) / 64
