"""The collapse monitor's statistics and verdict, the schedules of a short run, the teacher's remaining share, iBOT
masks and SMART's normalised class query."""
import math

import pytest
import torch

from nnunet_swin.pretraining.masking import ibot_block_mask
from nnunet_swin.pretraining.monitor import (attention_entropy, collapse_warning, collapsed_heads,
                                             cross_sample_cosine, head_statistics)
from nnunet_swin.pretraining.schedules import RampPlan, teacher_init_share


def test_a_uniform_input_independent_teacher_reads_as_collapse_and_a_varied_one_does_not():
    k, g = 64, torch.Generator().manual_seed(0)
    sample = torch.arange(3).repeat(2)
    same = torch.nn.functional.normalize(torch.ones(6, 8), dim=-1)
    uniform = torch.full((6, k), 1.0 / k)
    flat_logits = torch.zeros(6, k)
    s = head_statistics(flat_logits, uniform, torch.zeros(6, k), 0.1, None, same, sample)
    assert s["teacher_entropy"] == pytest.approx(math.log(k)) and s["batch_entropy"] == pytest.approx(math.log(k))
    assert s["kl"] == pytest.approx(0.0, abs=1e-6) and s["logit_std"] == 0.0 and s["cosine"] == pytest.approx(1.0)
    logits = torch.randn(6, k, generator=g)
    probs = torch.softmax(logits / 0.04, -1)
    z = torch.randn(6, 8, generator=g)
    v = head_statistics(logits, probs, torch.randn(6, k, generator=g), 0.1, None, z, sample)
    assert v["teacher_entropy"] < math.log(k) - 1 and v["logit_std"] > 0.5 and v["cosine"] < 0.9 and v["kl"] > 0
    rows_c = [{"teacher_entropy_itd": s["teacher_entropy"], "cosine_itd": s["cosine"],
               "teacher_entropy_mpd": v["teacher_entropy"], "cosine_mpd": v["cosine"]}] * 3
    assert collapsed_heads(rows_c, k) == ["itd"]
    line = collapse_warning(["itd"], 4, rows_c, k)
    assert line.startswith("warning: distillation collapsed in epoch 5 (ITD teacher entropy 4.1589 (ln K 4.1589)")
    assert "no gradient" in line and "--batch-size" in line and "\n" not in line
    assert collapsed_heads(rows_c[:2] + [{**rows_c[0], "cosine_itd": 0.99}], k) == []   # not the whole epoch


def test_a_slow_collapse_is_caught_by_the_teachers_logit_std_and_a_slow_start_is_not():
    k = 8192
    ln_k = math.log(k)
    # the crop-64 iBOT run's last epoch: teacher near uniform and input-independent, student cosine only 0.99
    slow = [{"teacher_entropy_ctd": ln_k - 0.007, "cosine_ctd": 0.99, "logit_std_ctd": 0.0045}] * 20
    assert collapsed_heads(slow, k) == ["ctd"]
    line = collapse_warning(["ctd"], 3, slow, k)
    assert line.startswith("warning: distillation collapsed in epoch 4 (CTD teacher entropy") and \
        "teacher logit std 0.0045" in line
    # a slow start: entropy as high, but the teacher's output still depends on the input
    start = [{**r, "logit_std_ctd": 0.013} for r in slow]
    assert collapsed_heads(start, k) == []
    # the crop-32 run at 200 steps: input-dependence low, but the teacher's targets 0.035 nats from uniform
    learning = [{**r, "teacher_entropy_ctd": ln_k - 0.035, "logit_std_ctd": 0.0073} for r in slow]
    assert collapsed_heads(learning, k) == []


def test_cross_sample_cosine_ignores_pairs_of_one_sample():
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])   # sample 0 twice, sample 1 twice
    assert cross_sample_cosine(z, torch.tensor([0, 0, 1, 1])) == pytest.approx(0.0)
    assert cross_sample_cosine(z[:2], torch.tensor([0, 0])) == pytest.approx(1.0)      # one sample: its views


def test_attention_entropy_is_one_for_flat_attention_over_valid_tokens():
    valid = torch.tensor([[True] * 4 + [False] * 4])
    flat = torch.tensor([[[0.25] * 4 + [0.0] * 4]])
    assert attention_entropy(flat, valid) == pytest.approx(1.0)
    peaked = torch.tensor([[[0.97, 0.01, 0.01, 0.01] + [0.0] * 4]])
    assert attention_entropy(peaked, valid) < 0.2


def test_teacher_keeps_the_product_of_its_momenta():
    assert teacher_init_share(150, 150) == pytest.approx(0.739, abs=0.002)
    assert teacher_init_share(400, 400) == pytest.approx(0.448, abs=0.002)
    assert teacher_init_share(1000, 1000) == pytest.approx(0.135, abs=0.002)
    assert teacher_init_share(0, 100) == 1.0


def test_ramps_are_scaled_to_a_run_shorter_than_them_and_kept_otherwise():
    short = RampPlan.for_run(20, 20, 20, 30, 30, 30, 1)
    assert short.scale == pytest.approx(0.04)
    assert (short.lr_warmup, short.temp_warmup, short.patch_delay, short.patch_warmup) == (16, 24, 24, 24)
    assert short.freeze_last_layer == 1
    full = RampPlan.for_run(500, 250, 20, 30, 30, 30, 1)
    assert full.scale == 1.0 and full.lr_warmup == 20 * 250 and full.patch_delay == 30 * 250
    kept = RampPlan.for_run(20, 20, 20, 30, 30, 30, 1, scaling=False)
    assert kept.scale == 1.0 and kept.temp_warmup == 600


def test_ibot_masks_leave_a_share_of_views_unmasked_and_vary_the_ratio():
    m = ibot_block_mask(400, (4, 4, 4), 0.3, 0.2, 0.5, generator=torch.Generator().manual_seed(0))
    counts = m.flatten(1).sum(1).float()
    assert 0.4 < float((counts == 0).float().mean()) < 0.6
    masked = counts[counts > 0] / 64
    assert masked.min() >= 0.09 and masked.max() <= 0.51 and masked.std() > 0.05


def test_the_class_query_is_layer_normalised_by_default():
    from nnunet_swin.pretraining.heads import ClassAttention
    torch.manual_seed(0)
    tokens = torch.randn(2, 27, 32) * 3
    with_norm, raw = ClassAttention(32, 4), ClassAttention(32, 4, norm_query=False)
    raw.load_state_dict({k: v for k, v in with_norm.state_dict().items() if not k.startswith("norm_query")})
    valid = torch.ones(2, 27, dtype=torch.bool)
    e_norm = attention_entropy(with_norm(tokens, valid)[1], valid)
    e_raw = attention_entropy(raw(tokens, valid)[1], valid)
    assert e_raw > 0.999 and e_norm < e_raw - 0.005        # raw 0.02-std query: q.k about 0, flat softmax
