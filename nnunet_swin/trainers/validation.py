"""Choosing ``checkpoint_best.pth`` by the paper's rule: the best mean Dice on the fold's full validation volumes.

nnU-Net keeps the checkpoint with the best exponential moving average of the pseudo-Dice on validation *patches*.
The paper keeps the epoch with the best mean validation Dice on *full volumes*. With
``nnUNet_swin_val_every=K`` (or a trainer's ``full_volume_validation_every = K``), every K epochs and at the last
epoch the trainer predicts each validation case of its fold with nnU-Net's own sliding window (50% overlap,
Gaussian weighting, no mirroring, in the preprocessed 1 mm space, so no resampling back), scores Dice per
foreground label (region) against the preprocessed reference (the ignore label left out), averages over labels,
then over cases, and saves ``checkpoint_best.pth`` when that mean is the best so far. nnU-Net's EMA rule is then
off. Under DDP each rank scores its share of the cases and the sums are all-reduced. The values are kept in the
checkpoint's log (``nnunet_swin_full_volume_dice``), so ``--c`` resumes with the best so far.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation.case_metrics import dice

ENV_VARIABLE = "nnUNet_swin_val_every"
LOG_KEY = "nnunet_swin_full_volume_dice"   # list of [epoch, mean Dice] in the nnU-Net logger's checkpoint payload


def validation_every(default: int) -> int:
    """K from ``$nnUNet_swin_val_every`` when set, else ``default``; 0 keeps nnU-Net's EMA rule."""
    text = os.environ.get(ENV_VARIABLE)
    if text is None or text.strip() == "":
        return int(default)
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        raise UserError(f"{ENV_VARIABLE}={text!r} is not a number of epochs; use 0 (nnU-Net's EMA pseudo-Dice rule) or "
                        f"K >= 1 (full-volume validation every K epochs)")
    return k


def case_dice(prediction: np.ndarray, reference: np.ndarray, label_manager) -> float:
    """Mean Dice over the foreground labels (regions) of one case; labels absent from both masks are left out."""
    valid = reference != label_manager.ignore_label if label_manager.ignore_label is not None else None
    values = []
    for label in (label_manager.foreground_regions if label_manager.has_regions else label_manager.foreground_labels):
        members = label if isinstance(label, (list, tuple)) else [label]
        pred, ref = np.isin(prediction, members), np.isin(reference, members)
        if valid is not None:
            pred, ref = pred & valid, ref & valid
        values.append(dice(pred, ref))
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")


def full_volume_dice(trainer) -> float:
    """Mean full-volume validation Dice of ``trainer``'s fold (see the module docstring); NaN without cases."""
    import torch.distributed as dist
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    _, val_keys = trainer.do_split()
    if trainer.is_ddp:
        val_keys = val_keys[trainer.local_rank::dist.get_world_size()]
    dataset = trainer.dataset_class(trainer.preprocessed_dataset_folder, val_keys,
                                    folder_with_segs_from_previous_stage=trainer.folder_with_segs_from_previous_stage)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=True, device=trainer.device, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager, None,
                                    trainer.dataset_json, type(trainer).__name__,
                                    trainer.inference_allowed_mirroring_axes)
    trainer.network.eval()
    total, count = 0.0, 0
    try:
        for key in dataset.identifiers:
            data, seg, _, _ = dataset.load_case(key)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # blosc2 arrays are read-only
                logits = predictor.predict_sliding_window_return_logits(torch.from_numpy(data[:]))
            prediction = trainer.label_manager.convert_logits_to_segmentation(logits.cpu()).numpy()
            value = case_dice(prediction, np.asarray(seg[:])[0], trainer.label_manager)
            if value == value:
                total, count = total + value, count + 1
    finally:
        trainer.network.train()
    if trainer.is_ddp:
        sums = torch.tensor([total, float(count)], dtype=torch.float64, device=trainer.device)
        dist.all_reduce(sums)
        total, count = float(sums[0]), int(sums[1])
    return total / count if count else float("nan")
