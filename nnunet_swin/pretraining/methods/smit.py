"""SMIT (Jiang et al., MICCAI 2022): masked image prediction (MIP), masked patch-token distillation (MPD, iBOT) and
cross-view image-token distillation (ITD, DINO) with a plain EMA teacher.

Masks: SMIT's (``--masking smit``: every view, ratio ``--mask-ratio`` 0.7 of the 16^3 blocks) or iBOT's
(``--masking ibot``: half of the views unmasked, the others at 0.1-0.5).
"""
from __future__ import annotations

import torch

from nnunet_swin.pretraining.losses import (cross_view_distillation, masked_l1, masked_patch_distillation,
                                            teacher_distribution)
from nnunet_swin.pretraining.masking import ibot_block_mask, random_block_mask
from nnunet_swin.pretraining.methods.base import Method, StepInputs
from nnunet_swin.pretraining.monitor import head_statistics


def _other_view(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Rows (view 0 samples, view 1 samples) -> the same samples' other view."""
    return t.reshape(2, batch, *t.shape[1:]).flip(0).reshape(t.shape)


class SMIT(Method):
    name = "smit"
    order = 0
    centres = ("patch", "global")

    def masks(self, teacher_out: dict, inputs: StepInputs, grid) -> torch.Tensor:
        cfg = self.config
        n, device = 2 * inputs.batch, inputs.x.device
        if cfg.masking == "ibot":
            return ibot_block_mask(n, grid, cfg.ibot_ratio[0], cfg.ibot_ratio[1], cfg.ibot_unmasked_share,
                                   generator=inputs.generator(2), device=device)
        return random_block_mask(n, grid, cfg.mask_ratio, generator=inputs.generator(2), device=device)

    def losses(self, t: dict, s: dict, inputs: StepInputs, targets: dict, centres) -> dict[str, torch.Tensor]:
        tau_s = self.config.student_temp
        tp = teacher_distribution(t["patch_logits"], centres["patch"].value, inputs.temperatures["patch"])
        tg = teacher_distribution(t["global_logits"], centres["global"].value, inputs.temperatures["global"])
        self._probs = {"mpd": tp, "itd": tg}
        return {"mip": masked_l1(inputs.x.float(), s["reconstruction"].float(), targets["voxels"].unsqueeze(1)),
                "mpd": masked_patch_distillation(list(tp.chunk(2)), list(s["patch_logits"].chunk(2)),
                                                 list(targets["tokens"].chunk(2)), tau_s),
                "itd": cross_view_distillation(list(tg.chunk(2)), list(s["global_logits"].chunk(2)), tau_s)}

    def centre_statistics(self, t: dict) -> dict[str, torch.Tensor]:
        valid = t["token_valid"].unsqueeze(-1).float()
        return {"global": t["global_logits"].float().mean(0),
                "patch": (t["patch_logits"].float() * valid).sum((0, 1)) / valid.sum().clamp(min=1.0)}

    def monitor(self, t: dict, s: dict, inputs: StepInputs, targets: dict, centres) -> dict:
        b, tau = inputs.batch, self.config.student_temp
        sample = torch.arange(b, device=t["global_logits"].device).repeat(2)
        out = {}
        stats = head_statistics(t["global_logits"], self._probs["itd"], _other_view(s["global_logits"], b), tau,
                                None, s["global_bottleneck"], sample)
        out.update({f"{k}_itd": v for k, v in stats.items()})
        real = t["token_valid"]
        token_sample = sample.unsqueeze(1).expand_as(real)
        stats = head_statistics(t["patch_logits"][real], self._probs["mpd"][real], s["patch_logits"][real], tau,
                                targets["tokens"][real], s["patch_bottleneck"][real], token_sample[real])
        out.update({f"{k}_mpd": v for k, v in stats.items()})
        return out
