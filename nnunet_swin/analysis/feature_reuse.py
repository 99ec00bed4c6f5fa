"""`nnunet-swin cka`: layer x layer feature similarity of two models on the same images (paper section 2.7).

Activations: a forward hook on every transformer block (``net.encoder.iter_blocks()``; output ``(B, D, H, W, C)``,
channels last) is adaptively average-pooled to 8 x 8 x 8 tokens and flattened to ``(B, C * 512)``. Each model sees
every image preprocessed and placed into its own patch (``dilution_report.crops_for_model``). The minibatch CKA
(``analysis.cka``) runs over consecutive batches of ``batch_size`` images in a fixed (sorted case id) order; the
short last batch is dropped and reported.

Outputs: ``cka_matrix.csv`` (rows = model A layers, columns = model B layers), ``cka_diagonal.csv`` (layer, cka,
drift = 1 - cka), ``cka_heatmap.png``, ``cka_diagonal.png``, ``cka_summary.json``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from nnunet_swin.analysis import figures
from nnunet_swin.analysis.cka import MinibatchCKA
from nnunet_swin.analysis.crop_placement import CropPlacement
from nnunet_swin.errors import UserError
from nnunet_swin.io import write_csv, write_json

POOLED_TOKENS = 8


def layer_names(network: torch.nn.Module) -> list[str]:
    return [f"S{s}.B{b}" for s, b, _ in network.encoder.iter_blocks()]


def pool_block_output(t: torch.Tensor, tokens: int = POOLED_TOKENS) -> torch.Tensor:
    """(B, D, H, W, C) channels-last block output -> (B, C * tokens^3) float32 on the CPU."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    if t.ndim != 5:
        raise ValueError(f"expected a (B, D, H, W, C) block output, got {tuple(t.shape)}")
    pooled = F.adaptive_avg_pool3d(t.detach().permute(0, 4, 1, 2, 3).float(), tokens)
    return pooled.flatten(1).cpu()


@contextlib.contextmanager
def block_activations(network: torch.nn.Module):
    """Collects pooled block outputs: yields a list (one entry per block) of lists of (B, C*512) tensors."""
    store: list[list[torch.Tensor]] = []
    handles = []
    for i, (_, _, blk) in enumerate(network.encoder.iter_blocks()):
        store.append([])
        handles.append(blk.register_forward_hook(lambda _m, _inp, out, i=i: store[i].append(pool_block_output(out))))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def activations(network: torch.nn.Module, crops: list[CropPlacement], device: str | torch.device = "cpu",
                forward_batch: int = 1) -> list[torch.Tensor]:
    """Pooled activations of every block for the given crops: list over blocks of (n_images, C * 512)."""
    network = network.to(device).eval()
    with torch.no_grad(), block_activations(network) as store:
        for i in range(0, len(crops), forward_batch):
            chunk = crops[i:i + forward_batch]
            x = torch.from_numpy(np.stack([c.data for c in chunk])).to(device)
            m = torch.from_numpy(np.stack([c.mask for c in chunk])).to(device)
            network(x, padding_mask=m)
    return [torch.cat(s) for s in store]


def compare_models(net_a: torch.nn.Module, crops_a: list[CropPlacement], net_b: torch.nn.Module,
                   crops_b: list[CropPlacement], batch_size: int, device: str = "cpu",
                   progress: bool = False) -> tuple[np.ndarray, int]:
    """(layers_a, layers_b) minibatch CKA and the number of images used (the short last batch dropped)."""
    if len(crops_a) != len(crops_b):
        raise ValueError("both models need the same images")
    n = len(crops_a)
    if n < batch_size:
        raise UserError(f"{n} images are fewer than one CKA batch of {batch_size}; add images or lower --batch-size "
                        f"(at least 4)")
    meter = MinibatchCKA(batch_size)
    used = (n // batch_size) * batch_size
    for start in tqdm(range(0, used, batch_size), desc="CKA batches", disable=not progress):
        acts_a = activations(net_a, crops_a[start:start + batch_size], device)
        acts_b = activations(net_b, crops_b[start:start + batch_size], device)
        meter.update(acts_a, acts_b)
    return meter.result(), used


def run_cka(model_a, model_b, images: str | Path, out_dir: str | Path, batch_size: int = 8,
            labels: tuple[str, str] = ("A", "B"), device: str = "cpu", progress: bool = True) -> dict:
    """The whole command for two ``LoadedModel`` s on one raw image folder."""
    from nnunet_swin.analysis.dilution_report import crops_for_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops_a = crops_for_model(model_a, images, progress)
    crops_b = crops_for_model(model_b, images, progress)
    ids_a, ids_b = [c for c, _ in crops_a], [c for c, _ in crops_b]
    if ids_a != ids_b:
        raise UserError("the two models found different cases in the image folder (different file endings?)")
    matrix, used = compare_models(model_a.network, [p for _, p in crops_a], model_b.network,
                                  [p for _, p in crops_b], batch_size, device, progress)
    rows, cols = layer_names(model_a.network), layer_names(model_b.network)
    table = pd.DataFrame(matrix, index=rows, columns=cols)
    table.index.name = f"{labels[0]} \\ {labels[1]}"
    write_csv(out / "cka_matrix.csv", table, index=True)
    common = [r for r in rows if r in cols]
    diag = np.array([table.loc[r, r] for r in common])
    write_csv(out / "cka_diagonal.csv", pd.DataFrame({"layer": common, "cka": diag, "drift": 1 - diag}))
    figures.plot_cka_heatmap(matrix, rows, cols, out / "cka_heatmap.png", row_title=labels[0], col_title=labels[1])
    figures.plot_cka_diagonal(diag, common, out / "cka_diagonal.png")
    summary = {"models": {labels[0]: model_a.source, labels[1]: model_b.source}, "images": len(ids_a),
               "images_used": used, "images_dropped": len(ids_a) - used, "batch_size": batch_size,
               "estimator": "minibatch linear CKA, unbiased HSIC (Song 2012), float64, U-centred",
               "pooling": f"adaptive average pool of each block output to {POOLED_TOKENS}^3 tokens",
               "diagonal": dict(zip(common, map(float, diag))),
               "mean_diagonal": float(np.nanmean(diag)) if diag.size else float("nan")}
    write_json(out / "cka_summary.json", summary)
    return summary


def cka_for_models(images: str | Path, output: str | Path, model_b: str | Path | None,
                   model_a: str | Path | None = None, pretrained: str | Path | None = None,
                   labels: tuple[str | None, str | None] = (None, None), folds: tuple[int | str, int | str] = (0, 0),
                   checkpoint: str = "checkpoint_final.pth", batch_size: int = 8, device: str | None = "auto",
                   progress: bool = True, random_b: tuple | None = None) -> dict:
    """``nnunet-swin cka`` as one call: model B is a trained model folder, or with ``random_b = (plans file,
    dataset.json, configuration, seed)`` the untrained network of that plans configuration (random initialisation
    under ``seed``: the floor); model A either another trained folder or B's architecture with the ``pretrained``
    encoder checkpoint. Labels default to the folder names (``pretrained`` for such an A, ``random init`` for such a
    B). Inputs that need no model are checked before any model is loaded."""
    from nnunet_swin.analysis.model_loading import load_backbone, load_model_folder
    from nnunet_swin.device import resolve_device

    if (model_a is None) == (pretrained is None):
        raise UserError("give exactly one of -a MODEL_FOLDER and --pretrained CHECKPOINT for model A")
    if (model_b is None) == (random_b is None):
        raise UserError("give exactly one of -b MODEL_FOLDER and --random-b (with --plans, --dataset-json, -c) for "
                        "model B")
    if random_b is not None and not all(random_b[:3]):
        raise UserError("--random-b builds model B from the plans: give --plans PLANS.json, --dataset-json "
                        "dataset.json and -c CONFIGURATION")
    if batch_size < 4:
        raise UserError(f"--batch-size must be at least 4 (the unbiased HSIC needs n >= 4), got {batch_size}")
    device = resolve_device(device)
    if random_b is not None:
        plans_file, dataset_json, configuration, seed = random_b
        loaded_b = load_backbone(plans_file, dataset_json, configuration, None, seed=seed)
        loaded_b.source = f"random initialisation (seed {seed}) of {Path(plans_file).stem} {configuration}"
        label_b = labels[1] or "random init"
    else:
        loaded_b = load_model_folder(model_b, folds[1], checkpoint)
        plans_file, dataset_json = Path(model_b) / "plans.json", Path(model_b) / "dataset.json"
        label_b = labels[1] or Path(model_b).name
    if model_a is not None:
        loaded_a = load_model_folder(model_a, folds[0], checkpoint)
        label_a = labels[0] or Path(model_a).name
    else:
        loaded_a = load_backbone(plans_file, dataset_json, loaded_b.configuration, pretrained)
        label_a = labels[0] or "pretrained"
    return run_cka(loaded_a, loaded_b, images, output, batch_size, (label_a, label_b), device, progress=progress)
