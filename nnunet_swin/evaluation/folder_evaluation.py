"""Evaluate one prediction folder against a reference folder: per-case CSV, summary JSON and Markdown.

Outputs (never nnU-Net's own ``summary.json``, which stays untouched next to them):
``metrics_per_case.csv``, ``summary_extended.md`` and ``summary_extended.json`` (written last: its presence marks
a complete run). Nothing is written until every case has been evaluated.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import folders
from nnunet_swin.evaluation.case_metrics import measure_case
from nnunet_swin.evaluation.summary import summarize_per_case, summary_markdown
from nnunet_swin.io import write_csv, write_json, write_text

# nnU-Net's default worker count (environment variable nnUNet_def_n_proc, else 8); a torch-free import
from nnunetv2.configuration import default_num_processes as DEFAULT_NUM_PROCESSES  # noqa: E402

PER_CASE_CSV = "metrics_per_case.csv"
SUMMARY_JSON = "summary_extended.json"
SUMMARY_MD = "summary_extended.md"


@dataclass
class EvaluationResult:
    """``per_case``: one row per case and label; ``summary``: the JSON content; ``files``: what was written."""

    per_case: pd.DataFrame
    summary: dict
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class _CaseTask:
    pair: folders.CasePair
    reader_writer: type
    labels: tuple | None
    ignore_label: int | None
    options: dict


def _evaluate_case(task: _CaseTask) -> list[dict]:
    """Worker (module level, so spawn pools can pickle it): all labels of one case."""
    ref, pred, spacing = folders.read_pair(task.pair, task.reader_writer)
    if task.labels is None:
        folders.check_binary(ref, task.pair.case_id, "the reference")
        folders.check_binary(pred, task.pair.case_id, "the prediction")
    rows = []
    for label in task.labels or (1,):
        pred_mask = folders.label_mask(pred, label)
        if task.ignore_label is not None:
            pred_mask &= ref != task.ignore_label
        metrics = measure_case(pred_mask, folders.label_mask(ref, label), spacing, **task.options)
        rows.append({"case_id": task.pair.case_id, "label": folders.label_key(label), **metrics,
                     "spacing": "x".join(f"{s:g}" for s in spacing),
                     "reference_file": task.pair.reference_file, "prediction_file": task.pair.prediction_file})
    return rows


def run_cases(tasks: list, worker, num_processes: int, progress: bool, description: str) -> list:
    """Apply ``worker`` to every task, in order, in a spawn pool when more than one process is asked for."""
    n = max(1, min(int(num_processes), len(tasks)))
    bar = dict(total=len(tasks), desc=description, disable=not progress, unit="case")
    if n == 1:
        return [worker(t) for t in tqdm(tasks, **bar)]
    with multiprocessing.get_context("spawn").Pool(n) as pool:
        return list(tqdm(pool.imap(worker, tasks), **bar))


def evaluate_cases(reference_folder, prediction_folder, *, labels=None, file_ending=None, dataset_json=None,
                   tolerance_mm: float = 2.0, detection_threshold: float = 0.1,
                   num_processes: int = DEFAULT_NUM_PROCESSES, crop_depth: int | None = None,
                   crop_spacing_z: float | None = None, transpose_forward=(0, 1, 2), subtypes_csv=None,
                   hd95: bool = False, progress: bool = True) -> tuple[pd.DataFrame, folders.DatasetSetup]:
    """The per-case table of one folder (no files written); see :func:`evaluate_folder` for the arguments."""
    if not tolerance_mm >= 0:
        raise UserError(f"tolerance must be >= 0 mm, got {tolerance_mm}")
    if not 0 <= detection_threshold <= 1:
        raise UserError(f"detection threshold is a Dice value in [0, 1], got {detection_threshold}")
    if crop_depth is not None and crop_depth <= 0:
        raise UserError(f"crop depth must be a positive number of slices, got {crop_depth}")
    if crop_spacing_z is not None and not crop_spacing_z > 0:
        raise UserError(f"crop z spacing must be a positive number of mm, got {crop_spacing_z}")
    if sorted(int(a) for a in transpose_forward) != [0, 1, 2]:
        raise UserError(f"transpose_forward must be a permutation of 0 1 2, got {list(transpose_forward)}")
    setup = folders.resolve_setup(reference_folder, prediction_folder, labels=labels, file_ending=file_ending,
                                  dataset_json=dataset_json)
    pairs = folders.pair_cases(reference_folder, prediction_folder, setup.file_ending)
    subtypes = (folders.load_subtypes(subtypes_csv, [p.case_id for p in pairs], setup.file_ending)
                if subtypes_csv is not None else None)
    options = dict(tolerance_mm=float(tolerance_mm), detection_threshold=float(detection_threshold), hd95=hd95,
                   crop_depth=crop_depth, crop_spacing_z=crop_spacing_z,
                   transpose_forward=tuple(int(a) for a in transpose_forward))
    tasks = [_CaseTask(p, setup.reader_writer, setup.labels, setup.ignore_label, options) for p in pairs]
    results = run_cases(tasks, _evaluate_case, num_processes, progress, f"evaluate {Path(prediction_folder).name}")
    per_case = pd.DataFrame([row for rows in results for row in rows])
    if setup.label_names:
        per_case.insert(2, "label_name", per_case["label"].map(setup.label_names))
    if subtypes is not None:
        per_case.insert(1, "subtype", per_case["case_id"].map(subtypes))
    return per_case, setup


def summary_metrics(per_case: pd.DataFrame) -> list[str]:
    """Metrics worth summarising in this table (HD95 / padding fraction only when computed)."""
    metrics = ["surface_dice", "dice", "volume_ratio"]
    metrics += [m for m in ("hd95", "padding_fraction") if m in per_case and per_case[m].notna().any()]
    return metrics


def evaluate_folder(reference_folder, prediction_folder, output_folder=None, *, labels=None, file_ending=None,
                    dataset_json=None, tolerance_mm: float = 2.0, detection_threshold: float = 0.1,
                    num_processes: int = DEFAULT_NUM_PROCESSES, crop_depth: int | None = None, subtypes_csv=None,
                    crop_spacing_z: float | None = None, transpose_forward=(0, 1, 2), hd95: bool = False,
                    progress: bool = True) -> EvaluationResult:
    """Surface Dice, Dice, volume ratio and detection (optionally HD95 and padding fraction) of every case.

    reference_folder / prediction_folder: nnU-Net segmentation folders with the same file names (``case.nii.gz``).
    output_folder: where the CSV / JSON / Markdown go; default the prediction folder (beside nnU-Net's
    ``summary.json``, which is left alone). labels: label ids or regions (tuples) to evaluate; default from
    ``dataset.json`` (given, or found in the prediction folder or beside the reference folder), else binary 0/1
    masks. tolerance_mm: surface-Dice tolerance. detection_threshold: Dice at or above which a case is detected.
    crop_depth: crop size along z in slices (at ``crop_spacing_z`` mm, native slices if None) for the padding
    fraction pf (paper eq. 4); z is raw axis ``transpose_forward[0]``, as in the plans. subtypes_csv: table with ``case_id,subtype`` to split the summaries.
    """
    per_case, setup = evaluate_cases(reference_folder, prediction_folder, labels=labels, file_ending=file_ending,
                                     dataset_json=dataset_json, tolerance_mm=tolerance_mm,
                                     detection_threshold=detection_threshold, num_processes=num_processes,
                                     crop_depth=crop_depth, crop_spacing_z=crop_spacing_z,
                                     transpose_forward=transpose_forward, subtypes_csv=subtypes_csv, hd95=hd95,
                                     progress=progress)
    metrics = summary_metrics(per_case)
    summary = {
        "settings": {
            "reference_folder": str(reference_folder), "prediction_folder": str(prediction_folder),
            "file_ending": setup.file_ending, "labels": per_case["label"].unique().tolist(),
            "surface_dice": f"DeepMind surfel NSD at tolerance {tolerance_mm} mm",
            "tolerance_mm": tolerance_mm, "detection_threshold": detection_threshold,
            "crop_depth": crop_depth, "crop_spacing_z": crop_spacing_z,
            "transpose_forward": list(transpose_forward),
            "subtypes_csv": None if subtypes_csv is None else str(subtypes_csv), "n_cases": int(
                per_case["case_id"].nunique()),
            "policy": "both masks empty -> NaN (left out); missed case -> sDSC 0, Dice 0, VR 0; detection over "
                      "cases with a non-empty reference; HD95 of a one-sided empty case -> 373.13 mm",
        },
        "labels": summarize_per_case(per_case, metrics),
    }
    markdown = summary_markdown(summary["labels"], metrics, f"Evaluation of {prediction_folder}")
    out = Path(prediction_folder if output_folder is None else output_folder)
    files = {
        "per_case_csv": write_csv(out / PER_CASE_CSV, per_case),
        "summary_md": write_text(out / SUMMARY_MD, markdown + "\n"),
        "summary_json": write_json(out / SUMMARY_JSON, summary),
    }
    return EvaluationResult(per_case, summary, markdown, files)
