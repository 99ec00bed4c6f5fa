"""`nnunet-swin adi`: attention dilution per scan and stage for one or more of our models, tables and figures.

Pipeline per model: raw images -> nnU-Net predictor preprocessing (``model_loading.preprocess_case``) -> placed
into the configuration's patch (``crop_placement.place_in_crop``: centred zero-padding where shorter, centre crop
where longer; no tiling) -> one forward pass under ``attention_probe`` with the voxel mask as ``padding_mask`` ->
``AttentionDilutionMeter`` (pooling documented in ``attention_dilution``).

Outputs in the output folder: ``adi_per_scan.csv`` (one row per model and scan: pf, pf_voxels, ADI / input / window
ADI and pad mass per stage), ``adi_summary.json`` (per model and stage: mean, SD, median over scans; Spearman of
the last stage's ADI against pf), ``adi_per_stage.png``, ``adi_vs_pf.png`` and, with an evaluation CSV,
``<metric>_binned.png``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from nnunet_swin.analysis import figures
from nnunet_swin.analysis.attention_dilution import AttentionDilutionMeter
from nnunet_swin.analysis.crop_placement import CropPlacement, place_in_crop
from nnunet_swin.analysis.model_loading import LoadedModel, preprocess_case
from nnunet_swin.errors import UserError
from nnunet_swin.raw_dataset.naming import list_cases
from nnunet_swin.io import write_csv, write_json

POOLING = ("per (scan, stage, block, head): sum H_RP / (sum H_RR + sum H_RP) over all real queries of all windows "
           "(NaN if the total entropy is 0); per scan and stage: mean over heads and blocks (NaN cells left out); "
           "summary: mean/SD/median over scans")
CROP_RULE = "per axis: centred zero-padding where the scan is shorter than the patch, centre crop where longer"


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def measure_dilution(network: torch.nn.Module, items: Iterable[tuple[str, CropPlacement]], batch_size: int = 1,
                     device: str | torch.device = "cpu", progress: bool = False) -> pd.DataFrame:
    """ADI of every scan. items: (case id, placed crop) pairs, crops of one size. One row per scan with
    ``case_id, pf, pf_voxels, z_extent`` and per stage k ``adi_s{k}, adi_input_s{k}, adi_window_s{k}, mass_s{k},
    mass_input_s{k}, mass_window_s{k}`` (eq. 7, pooled) and ``adi_window_mean_s{k}`` (mean over windows)."""
    items = list(items)
    meter = AttentionDilutionMeter()
    network = network.to(device).eval()
    with torch.no_grad():
        for batch in tqdm(list(_batches(items, batch_size)), desc="ADI", disable=not progress):
            x = torch.from_numpy(np.stack([p.data for _, p in batch])).to(device)
            m = torch.from_numpy(np.stack([p.mask for _, p in batch])).to(device)
            meter.start_batch([c for c, _ in batch])
            with network.encoder.attention_probe(meter):
                network(x, padding_mask=m)
    res = meter.results()
    rows = []
    for case, p in items:
        row = {"case_id": case, "pf": p.pf, "pf_voxels": p.pf_voxels, "z_extent": p.extent[0]}
        for stage, r in res[case].items():
            row.update({f"adi_s{stage}": r.adi, f"adi_input_s{stage}": r.adi_input,
                        f"adi_window_s{stage}": r.adi_window, f"mass_s{stage}": r.mass,
                        f"mass_input_s{stage}": r.mass_input, f"mass_window_s{stage}": r.mass_window,
                        f"adi_window_mean_s{stage}": r.adi_window_mean})
        rows.append(row)
    return pd.DataFrame(rows)


def summarise_dilution(table: pd.DataFrame) -> dict:
    """Per stage mean / SD / median over scans (NaN scans left out) and Spearman(last-stage ADI, pf)."""
    stages = figures.stage_columns(table, "adi")
    out: dict = {"n_scans": int(len(table)), "pf_mean": float(table.pf.mean()), "pf_sd": float(table.pf.std()),
                 "padded_scans": int((table.pf > 0).sum()), "stages": {}}
    for s in stages:
        entry = {}
        for name in ("adi", "adi_input", "adi_window", "mass", "mass_input", "mass_window", "adi_window_mean"):
            col = table[f"{name}_s{s}"].dropna()
            entry[name] = {"mean": float(col.mean()) if len(col) else float("nan"),
                           "sd": float(col.std()) if len(col) > 1 else float("nan"),
                           "median": float(col.median()) if len(col) else float("nan"), "n": int(len(col))}
        out["stages"][f"S{s}"] = entry
    if stages:
        last = f"adi_s{stages[-1]}"
        ok = table[["pf", last]].dropna()
        if len(ok) >= 3 and ok.pf.nunique() > 1 and ok[last].nunique() > 1:
            rho, p = stats.spearmanr(ok.pf, ok[last])
            out["spearman_last_stage_adi_vs_pf"] = {"stage": stages[-1], "rho": float(rho), "p": float(p),
                                                    "n": int(len(ok))}
    return out


@dataclass
class ModelInput:
    label: str
    model: LoadedModel


def crops_for_model(model: LoadedModel, images: str | Path, progress: bool = False) -> list[tuple[str, CropPlacement]]:
    """Preprocess every case of a raw image folder for this model and place it into the model's patch."""
    ending = model.dataset_json.get("file_ending", ".nii.gz")
    cases = list_cases(images, ending, model.num_input_channels)
    out = []
    for case, files in tqdm(cases.items(), desc="preprocess", disable=not progress):
        data, _, _ = preprocess_case(model, files)
        out.append((case, place_in_crop(data, model.patch_size)))
    return out


def read_evaluation(path: str | Path, metric: str | None) -> tuple[pd.DataFrame, str]:
    """Per-case evaluation CSV (needs ``case_id`` and the metric column; default: the first of sdsc / nsd /
    surface_dice / dice found)."""
    if not Path(path).is_file():
        raise UserError(f"evaluation table {path} does not exist; give the metrics_per_case.csv that "
                        f"`nnunet-swin evaluate` wrote (--evaluation)")
    try:
        df = pd.read_csv(path, dtype={"case_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a readable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        f"give the metrics_per_case.csv that `nnunet-swin evaluate` wrote (--evaluation)") from None
    if "case_id" not in df.columns:
        raise UserError(f"{path} has no case_id column (columns: {', '.join(df.columns)})")
    if metric is None:
        metric = next((c for c in ("sdsc", "nsd", "surface_dice", "dice") if c in df.columns), None)
        if metric is None:
            raise UserError(f"{path}: name the metric column with --metric (columns: {', '.join(df.columns)})")
    elif metric not in df.columns:
        raise UserError(f"{path} has no column {metric!r} (columns: {', '.join(df.columns)})")
    return df[["case_id", metric]].groupby("case_id", as_index=False).mean(), metric


def run_adi(models: list[ModelInput], images: str | Path, out_dir: str | Path, batch_size: int = 1,
            device: str = "cpu", evaluation: str | Path | None = None, metric: str | None = None,
            previous: dict[str, str | Path] | None = None, progress: bool = True) -> dict:
    """The whole command: measure every model on the same raw images, write tables and figures. The inputs that need
    no model (batch size, device, evaluation table) are checked before anything is measured."""
    from nnunet_swin.device import check_device

    if int(batch_size) < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    check_device(device)
    evaluation_table = read_evaluation(evaluation, metric) if evaluation is not None else None
    for label, path in (previous or {}).items():
        if not Path(path).is_file():
            raise UserError(f"--add {label}={path}: the file does not exist; give an adi_per_scan.csv of an "
                            f"earlier `nnunet-swin adi` run")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame] = {}
    for mi in models:
        crops = crops_for_model(mi.model, images, progress)
        t = measure_dilution(mi.model.network, crops, batch_size, device, progress)
        t.insert(0, "model", mi.label)
        tables[mi.label] = t
    for label, path in (previous or {}).items():
        t = pd.read_csv(path, dtype={"case_id": str})
        if "adi_s0" not in t.columns or "pf" not in t.columns:
            raise UserError(f"{path} is not an adi_per_scan.csv written by `nnunet-swin adi`")
        t = t[t.model == label] if "model" in t.columns and label in set(t.model) else t.assign(model=label)
        tables[label] = t
    if not tables:
        raise UserError("nothing to measure: give at least one model")
    combined = pd.concat(tables.values(), ignore_index=True)
    write_csv(out / "adi_per_scan.csv", combined)
    summary = {"pooling": POOLING, "crop_rule": CROP_RULE, "pf": "eq. (4): max(1 - L/C, 0) along Z",
               "models": {}}
    for mi in models:
        summary["models"][mi.label] = {"source": mi.model.source, "configuration": mi.model.configuration,
                                       "patch_size": mi.model.patch_size,
                                       "backbone": mi.model.arch_kwargs.get("backbone"),
                                       **summarise_dilution(tables[mi.label])}
    for label in (previous or {}):
        summary["models"][label] = {"source": str(previous[label]), **summarise_dilution(tables[label])}
    last = max(figures.stage_columns(combined, "adi"))
    figures.plot_adi_per_stage(tables, out / "adi_per_stage.png")
    figures.plot_adi_vs_pf(tables, out / "adi_vs_pf.png", stage=last)
    if evaluation is not None:
        ev, metric = evaluation_table
        first = next(iter(tables))
        merged = tables[first].merge(ev, on="case_id", how="inner")
        if merged.empty:
            raise UserError(f"{evaluation} shares no case ids with the images")
        figures.plot_metric_binned(merged, metric, out / f"{metric}_binned.png", stage=last)
        ok = merged[[metric, "pf", f"adi_s{last}"]].dropna()
        if len(ok) >= 3:
            summary["evaluation"] = {"model": first, "metric": metric, "n": int(len(ok)),
                                     "spearman_metric_vs_pf": float(stats.spearmanr(ok[metric], ok.pf)[0]),
                                     "spearman_metric_vs_adi": float(stats.spearmanr(ok[metric], ok[f"adi_s{last}"])[0])}
    write_json(out / "adi_summary.json", summary)
    return summary


def labelled_paths(items: Iterable[str], option: str = "--add") -> dict[str, str]:
    """``["LABEL=PATH", ...]`` -> ``{LABEL: PATH}`` (``UserError`` naming the item that has no label or path)."""
    out = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise UserError(f"{option} takes LABEL=CSV, got {item!r}")
        out[label] = path
    return out


def adi_for_models(images: str | Path, output: str | Path, model_folders: list[str] = (),
                   labels: list[str] = (), fold: int | str = 0, checkpoint: str = "checkpoint_final.pth",
                   configuration: str | None = None, plans: str | Path | None = None,
                   dataset_json: str | Path | None = None, pretrained: str | Path | None = None,
                   add: Iterable[str] = (), evaluation: str | Path | None = None, metric: str | None = None,
                   batch_size: int = 1, device: str | None = "auto", progress: bool = True) -> dict:
    """``nnunet-swin adi`` as one call: the trained model folders (and, with ``plans``/``dataset_json``/
    ``pretrained``, one backbone with pretrained or random weights) are loaded through nnU-Net's predictor, labelled
    (default: the folder names, then ``pretrained`` / ``random``) and measured by ``run_adi``; ``add`` holds
    ``LABEL=CSV`` tables of earlier runs. Inputs that need no model (batch size, device, evaluation table, labels,
    ``add``) are checked before any model is loaded."""
    from nnunet_swin.analysis.model_loading import load_model
    from nnunet_swin.device import resolve_device

    if int(batch_size) < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    if evaluation is not None:
        read_evaluation(evaluation, metric)
    backbone = bool(plans or dataset_json or pretrained)
    count = len(model_folders) + int(backbone)
    if labels and len(labels) != count:
        raise UserError(f"give one --label per model ({len(labels)} labels for {count} models)")
    previous = labelled_paths(add)
    if not count:
        raise UserError("give a trained model folder with -m, or --plans/--dataset-json/-c for a backbone")
    labels = list(labels) or [Path(f).name for f in model_folders] + (
        ["pretrained" if pretrained else "random"] if backbone else [])
    models = [ModelInput(label, load_model(folder, fold, checkpoint, configuration))
              for label, folder in zip(labels, model_folders)]
    if backbone:
        models.append(ModelInput(labels[-1], load_model(None, configuration=configuration, plans=plans,
                                                        dataset_json=dataset_json, pretrained=pretrained)))
    return run_adi(models, images, output, batch_size, device, evaluation, metric, previous, progress=progress)
