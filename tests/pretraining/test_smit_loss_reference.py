"""MPD, ITD and the centre update pinned to SMIT's maths on fixed random tensors.

``_smit_cls_patch_loss`` transcribes the structure of SMIT's ``Cls_Patch_Loss`` (iBOT's loss as SMIT uses it:
student logits divided by the student temperature and chunked per view; teacher ``softmax((t - c) / tau)`` chunked
per view; the patch term for ``v == q`` over masked tokens ``sum(ce * m) / m.sum().clamp(min=1)`` then the batch
mean; the global term for ``v != q``; each divided by its number of terms; then the two centre EMAs). With every
sample masked somewhere (SMIT's 0.7 ratio) our per-sample average is the same number.
"""
import torch
import torch.nn.functional as F

from nnunet_swin.pretraining.losses import (Centre, cross_view_distillation, masked_patch_distillation,
                                            teacher_distribution)


def _smit_cls_patch_loss(student_cls, student_patch, teacher_cls, teacher_patch, student_mask, center, center2,
                         temp, temp2, student_temp=0.1, ngcrops=2, center_momentum=0.9, center_momentum2=0.9):
    s_cls = (student_cls / student_temp).chunk(ngcrops)
    s_patch = (student_patch / student_temp).chunk(ngcrops)
    t_cls = F.softmax((teacher_cls - center) / temp, dim=-1).chunk(ngcrops)
    t_patch = F.softmax((teacher_patch - center2) / temp2, dim=-1).chunk(ngcrops)
    total1 = total2 = 0.0
    n1 = n2 = 0
    for q in range(len(t_cls)):
        for v in range(len(s_cls)):
            if v == q:
                loss2 = torch.sum(-t_patch[q] * F.log_softmax(s_patch[v], dim=-1), dim=-1)
                mask = student_mask[v].flatten(-3, -1)
                loss2 = torch.sum(loss2 * mask.float(), dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
                total2 += loss2.mean()
                n2 += 1
            else:
                loss1 = torch.sum(-t_cls[q] * F.log_softmax(s_cls[v], dim=-1), dim=-1)
                total1 += loss1.mean()
                n1 += 1
    cls_center = torch.sum(teacher_cls, dim=0, keepdim=True) / len(teacher_cls)
    new_center = center * center_momentum + cls_center * (1 - center_momentum)
    patch_center = torch.sum(teacher_patch.mean(1), dim=0, keepdim=True) / len(teacher_patch)
    new_center2 = center2 * center_momentum2 + patch_center * (1 - center_momentum2)
    return total1 / n1, total2 / n2, new_center, new_center2


def test_mpd_itd_and_centres_equal_smit_on_fixed_random_tensors():
    g = torch.Generator().manual_seed(1234)
    b, n, k, temp, temp2 = 3, 27, 64, 0.05, 0.04
    s_cls, t_cls = torch.randn(2 * b, k, generator=g) * 3, torch.randn(2 * b, k, generator=g) * 3
    s_patch, t_patch = torch.randn(2 * b, n, k, generator=g) * 3, torch.randn(2 * b, n, k, generator=g) * 3
    centre_g, centre_p = torch.randn(1, k, generator=g), torch.randn(1, k, generator=g)
    masks = torch.rand(2 * b, 3, 3, 3, generator=g) < 0.7
    masks[:, 0, 0, 0] = True                                     # every sample has a target, as at SMIT's 0.7
    itd_ref, mpd_ref, c_ref, c2_ref = _smit_cls_patch_loss(
        s_cls, s_patch, t_cls, t_patch, list(masks.chunk(2)), centre_g, centre_p.unsqueeze(0), temp, temp2)

    tg = teacher_distribution(t_cls, centre_g, temp)
    tp = teacher_distribution(t_patch, centre_p, temp2)
    itd = cross_view_distillation(list(tg.chunk(2)), list(s_cls.chunk(2)), 0.1)
    mpd = masked_patch_distillation(list(tp.chunk(2)), list(s_patch.chunk(2)), list(masks.flatten(1).chunk(2)), 0.1)
    assert abs(float(itd) - float(itd_ref)) < 1e-5 and abs(float(mpd) - float(mpd_ref)) < 1e-5
    assert abs(float(itd) - float(itd_ref)) / float(itd_ref) < 1e-6

    cg, cp = Centre(k, 0.9), Centre(k, 0.9)
    cg.value.copy_(centre_g)
    cp.value.copy_(centre_p)
    cg.update(t_cls.mean(0))
    cp.update(t_patch.mean((0, 1)))                              # every token real: the mean over real tokens
    assert torch.allclose(cg.value, c_ref, atol=1e-6) and torch.allclose(cp.value, c2_ref[0], atol=1e-6)


def test_prototype_layer_keeps_pytorchs_default_linear_init():
    from nnunet_swin.pretraining.heads import ProjectionHead
    torch.manual_seed(0)
    head = ProjectionHead(32, out_dim=4096, hidden_dim=64, bottleneck_dim=64)
    w = head.last_layer.weight
    bound = 1 / 64 ** 0.5                                          # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(in), ..)
    assert float(w.abs().max()) <= bound and abs(float(w.std()) - bound / 3 ** 0.5) < 0.005   # std 0.072, not 0.02
    assert abs(float(head.mlp[0].weight.std()) - 0.02) < 0.003      # the MLP keeps DINO's trunc_normal(0.02)
