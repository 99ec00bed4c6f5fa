"""SMART (Jiang et al., arXiv 2310.01209): SMIT plus a semantic class token (CaiT-style class attention over the
last stage's tokens, its query layer-normalised by default: ``--no-norm-class-query`` turns that off), class-token
distillation (CTD, cross-view, its own head and centre), masks guided by the teacher's class attention and a noisy
teacher. Every choice inside is [unverified] (no public code); each is a switch.
"""
from __future__ import annotations

import torch

from nnunet_swin.pretraining.losses import cross_view_distillation, teacher_distribution
from nnunet_swin.pretraining.masking import attention_guided_mask, attention_to_blocks, ibot_view_ratios
from nnunet_swin.pretraining.methods.base import StepInputs
from nnunet_swin.pretraining.methods.smit import SMIT, _other_view
from nnunet_swin.pretraining.monitor import attention_entropy, head_statistics


class SMART(SMIT):
    name = "smart"
    order = 1
    class_token = True
    centres = ("patch", "global", "class")

    def teacher_noise(self) -> tuple[str, float]:
        return self.config.teacher_noise, self.config.teacher_noise_std

    def masks(self, t: dict, inputs: StepInputs, grid) -> torch.Tensor:
        cfg = self.config
        if not cfg.guided_masking:
            return super().masks(t, inputs, grid)
        att = t["attention"].float().mean(1).reshape(2 * inputs.batch, *t["grid"])
        generator = inputs.generator(2)
        ratio = cfg.mask_ratio
        if cfg.masking == "ibot":     # iBOT's share of unmasked views and variable ratio, guided blocks
            ratio = ibot_view_ratios(2 * inputs.batch, cfg.ibot_ratio[0], cfg.ibot_ratio[1], cfg.ibot_unmasked_share,
                                     generator=generator)
        return attention_guided_mask(attention_to_blocks(att, grid), ratio, cfg.random_share, generator=generator)

    def losses(self, t: dict, s: dict, inputs: StepInputs, targets: dict, centres) -> dict[str, torch.Tensor]:
        parts = super().losses(t, s, inputs, targets, centres)
        tc = teacher_distribution(t["class_logits"], centres["class"].value, inputs.temperatures["class"])
        self._probs["ctd"] = tc
        parts["ctd"] = cross_view_distillation(list(tc.chunk(2)), list(s["class_logits"].chunk(2)),
                                               self.config.student_temp)
        return parts

    def centre_statistics(self, t: dict) -> dict[str, torch.Tensor]:
        return {**super().centre_statistics(t), "class": t["class_logits"].float().mean(0)}

    def monitor(self, t: dict, s: dict, inputs: StepInputs, targets: dict, centres) -> dict:
        out = super().monitor(t, s, inputs, targets, centres)
        b = inputs.batch
        sample = torch.arange(b, device=t["class_logits"].device).repeat(2)
        stats = head_statistics(t["class_logits"], self._probs["ctd"], _other_view(s["class_logits"], b),
                                self.config.student_temp, None, s["class_bottleneck"], sample)
        out.update({f"{k}_ctd": v for k, v in stats.items()})
        out["class_attention_entropy"] = attention_entropy(t["attention"], t["token_valid"])
        return out
