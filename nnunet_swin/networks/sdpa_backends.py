"""Which scaled-dot-product-attention kernels run the network's window attention here (a CUDA diagnostic).

Off the CPU kernels, window attention is one ``F.scaled_dot_product_attention`` call per block with queries, keys and
values ``(B', h', N, d)`` and one additive ``attn_mask`` (relative-position bias + shift mask + padding penalty) that
needs a gradient in training, the bias table's. Whether PyTorch's flash, memory-efficient or cuDNN kernel accepts such
a call depends on the device, the dtype, the head dim d and the window size N, so it is measured, not assumed:
``sdpa_report(network, x)`` runs one forward pass, records the SDPA call of every distinct block geometry, and runs
each backend on it alone (``torch.nn.attention.sdpa_kernel``), forward and backward.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH)


@dataclass
class SdpaCall:
    """One block geometry: where it first occurs, its operands, PyTorch's own choice and what each backend did."""
    stage: int
    block: int
    query_shape: tuple[int, ...]   # (B', h', N, d)
    mask_shape: tuple[int, ...]
    dtype: str
    mask_requires_grad: bool
    default: str                   # the backend PyTorch picks for this call ("unknown" if it cannot say)
    backends: dict[str, str] = field(default_factory=dict)  # backend -> "runs" or why not

    def line(self) -> str:
        runs = [name for name, what in self.backends.items() if what == "runs"]
        return (f"stage {self.stage} block {self.block}: q {self.query_shape} mask {self.mask_shape} {self.dtype}"
                f"{' (mask needs grad)' if self.mask_requires_grad else ''}: default {self.default}; "
                f"runs: {', '.join(runs) or 'none'}")


def _default_backend(q, k, v, mask, scale) -> str:
    choose = getattr(torch, "_fused_sdp_choice", None)  # what dispatch itself calls; private, so optional
    if choose is None:
        return "unknown"
    try:
        return SDPBackend(choose(q, k, v, mask, 0.0, False, scale=scale)).name
    except Exception:  # noqa: BLE001 - a diagnostic; an unexpected signature only means "unknown"
        return "unknown"


def _try(backend: SDPBackend, q, k, v, mask, scale) -> str:
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in (q, k, v, mask)]
    try:
        with sdpa_kernel([backend]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch warns why each refused kernel refused; the reason is returned
            out = F.scaled_dot_product_attention(*leaves[:3], attn_mask=leaves[3], scale=scale)
            if any(t.requires_grad for t in leaves):
                out.float().square().mean().backward()
        return "runs"
    except RuntimeError as e:
        return "no: " + (str(e).strip().splitlines() or ["?"])[0][:160]


def sdpa_report(network: torch.nn.Module, x: torch.Tensor, **forward_kwargs) -> list[SdpaCall]:
    """Run ``network(x, **forward_kwargs)`` once (under the caller's autocast and grad mode) and report, per distinct
    SDPA call geometry, PyTorch's default backend and which backends run it forward and backward.

    ``network`` is a ``SwinSegmentationNetwork`` or ``SwinEncoder`` on the device to test, outside the CPU kernels
    (on CPU, use ``cpu_kernels.plain_layers()``)."""
    encoder = getattr(network, "encoder", network)
    where = {"stage": -1, "block": -1}
    hooks = [blk.register_forward_pre_hook(lambda m, a, s=s, j=j: where.update(stage=s, block=j))
             for s, j, blk in encoder.iter_blocks()]
    seen: dict[tuple, SdpaCall] = {}
    calls = []
    real_sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, *args, **kwargs):
        key = (tuple(q.shape), None if attn_mask is None else tuple(attn_mask.shape), q.dtype)
        if key not in seen and attn_mask is not None:
            seen[key] = SdpaCall(where["stage"], where["block"], tuple(q.shape), tuple(attn_mask.shape),
                                 str(q.dtype).replace("torch.", ""), bool(attn_mask.requires_grad), "")
            calls.append((seen[key], (q, k, v, attn_mask), kwargs.get("scale")))
        return real_sdpa(q, k, v, attn_mask, *args, **kwargs)

    F.scaled_dot_product_attention = spy
    try:
        network(x, **forward_kwargs)
    finally:
        F.scaled_dot_product_attention = real_sdpa
        for h in hooks:
            h.remove()
    for call, (q, k, v, mask), scale in calls:
        call.default = _default_backend(q, k, v, mask, scale)
        call.backends = {b.name: _try(b, q, k, v, mask, scale) for b in BACKENDS}
    return [c for c, _, _ in calls]
