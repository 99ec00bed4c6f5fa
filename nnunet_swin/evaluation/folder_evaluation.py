"""Evaluate one prediction folder against a reference folder: per-case CSV, summary JSON and Markdown.

Outputs (never nnU-Net's own ``summary.json``, which stays untouched next to them):
``metrics_per_case.csv``, ``summary_extended.md`` and ``summary_extended.json`` (written last: its presence marks
a complete run). Nothing is written until every case has been evaluated; then an earlier run's set is removed
(marker first, see :mod:`nnunet_swin.evaluation.result_sets`) before the new one is written.
"""
from __future__ import annotations

import multiprocessing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import folders
from nnunet_swin.evaluation.case_metrics import measure_case
from nnunet_swin.evaluation.multiclass import MEAN_COLUMNS, add_multiclass_columns
from nnunet_swin.evaluation.summary import multiclass_markdown, multiclass_summary
from nnunet_swin.evaluation.summary import summarize_per_case, summary_markdown
from nnunet_swin.evaluation.result_sets import check_output_folder, clear_result_set, writing_into
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


def _evaluate_case(task: _CaseTask) -> tuple[list[dict], list[int]]:
    """Worker (module level, so spawn pools can pickle it): all labels of one case, and the prediction's values that
    are no evaluated label (they count as background)."""
    ref, pred, spacing = folders.read_pair(task.pair, task.reader_writer)
    folders.check_label_values(ref, task.pair.case_id, "the reference")
    folders.check_label_values(pred, task.pair.case_id, "the prediction")
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
    add_multiclass_columns(rows, pred, ref, task.labels, task.ignore_label)
    return rows, folders.unevaluated_values(pred, task.labels, task.ignore_label)


def run_cases(tasks: list, worker, num_processes: int, progress: bool, description: str) -> list:
    """Apply ``worker`` to every task, in order, in a spawn pool when more than one process is asked for."""
    n = max(1, min(int(num_processes), len(tasks)))
    bar = dict(total=len(tasks), desc=description, disable=not progress, unit="case")
    with tqdm(**bar) as progress_bar:  # closed (its line ended) also when a case raises
        if n == 1:
            results = []
            for t in tasks:
                results.append(worker(t))
                progress_bar.update()
            return results
        with multiprocessing.get_context("spawn").Pool(n) as pool:
            results = []
            for result in pool.imap(worker, tasks):
                results.append(result)
                progress_bar.update()
            return results


def evaluate_cases(reference_folder, prediction_folder, *, labels=None, file_ending=None, dataset_json=None,
                   tolerance_mm: float = 2.0, detection_threshold: float = 0.1,
                   num_processes: int = DEFAULT_NUM_PROCESSES, crop_depth: int | None = None,
                   crop_spacing_z: float | None = None, transpose_forward=(0, 1, 2), subtypes_csv=None,
                   hd95: bool = False, progress: bool = True,
                   tumor_labels=None) -> tuple[pd.DataFrame, folders.DatasetSetup]:
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
    tumor_keys = tumor_label_keys(setup.labels, tumor_labels)
    pairs = folders.pair_cases(reference_folder, prediction_folder, setup.file_ending)
    subtypes = (folders.load_subtypes(subtypes_csv, [p.case_id for p in pairs], setup.file_ending)
                if subtypes_csv is not None else None)
    options = dict(tolerance_mm=float(tolerance_mm), detection_threshold=float(detection_threshold), hd95=hd95,
                   crop_depth=crop_depth, crop_spacing_z=crop_spacing_z,
                   transpose_forward=tuple(int(a) for a in transpose_forward))
    tasks = [_CaseTask(p, setup.reader_writer, setup.labels, setup.ignore_label, options) for p in pairs]
    results = run_cases(tasks, _evaluate_case, num_processes, progress, f"evaluate {Path(prediction_folder).name}")
    per_case = pd.DataFrame([row for rows, _ in results for row in rows])
    if setup.labels is not None and labels is None:  # labels from dataset.json: other values are undeclared
        warn_undeclared(results, pairs)
    per_case.loc[~per_case["label"].isin(tumor_keys), "detected"] = float("nan")
    if setup.label_names:
        per_case.insert(2, "label_name", per_case["label"].map(setup.label_names))
    if subtypes is not None:
        per_case.insert(1, "subtype", per_case["case_id"].map(subtypes))
    return per_case, setup


def tumor_label_keys(labels, tumor_labels) -> set:
    """``label`` column values whose detection is scored: every evaluated label when ``tumor_labels`` is None, else
    the labels (and regions made only of labels) in ``tumor_labels``. Detection is a tumour notion (Dice >= 0.1 of
    a lesion); for other structures (rectal wall, organs) ``detected`` is NaN and Table 2 reports no rate."""
    labels = list(labels) if labels is not None else [1]
    if tumor_labels is None:
        return {folders.label_key(label) for label in labels}
    wanted = {int(t) for t in tumor_labels}
    members = {int(m) for label in labels for m in (label if isinstance(label, tuple) else (label,))}
    if not wanted <= members:
        raise UserError(f"tumour labels {sorted(wanted - members)} are not among the evaluated labels "
                        f"{sorted(members)}; check --tumor-labels against dataset.json")
    return {folders.label_key(label) for label in labels
            if set(label if isinstance(label, tuple) else (label,)) <= wanted}


def warn_undeclared(results, pairs) -> None:
    """One warning naming the cases whose predictions hold label values dataset.json does not declare."""
    odd = {pair.case_id: values for pair, (_, values) in zip(pairs, results) if values}
    if not odd:
        return
    values = sorted({v for vs in odd.values() for v in vs})
    cases = ", ".join(list(odd)[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
    warnings.warn(f"predictions of {len(odd)} case(s) ({cases}) hold label value(s) {values} that dataset.json does "
                  f"not declare; those voxels count as background. Check that the model was trained on this "
                  f"dataset's labels", stacklevel=2)


def labels_not_scored(per_case: pd.DataFrame) -> list[str]:
    """Labels that no reference and no prediction holds in any case: every metric is undefined (NaN)."""
    empty = per_case["ref_empty"].astype(bool) & per_case["pred_empty"].astype(bool)
    return [label for label, rows in empty.groupby(per_case["label"], sort=False) if rows.all()]


def summary_metrics(per_case: pd.DataFrame) -> list[str]:
    """Metrics worth summarising in this table (HD95 / padding fraction only when computed)."""
    metrics = ["surface_dice", "dice", "volume_ratio"]
    metrics += [m for m in ("iou", "accuracy", "hd95", "padding_fraction") if m in per_case and per_case[m].notna().any()]
    return metrics


def evaluate_folder(reference_folder, prediction_folder, output_folder=None, *, labels=None, file_ending=None,
                    dataset_json=None, tolerance_mm: float = 2.0, detection_threshold: float = 0.1,
                    num_processes: int = DEFAULT_NUM_PROCESSES, crop_depth: int | None = None, subtypes_csv=None,
                    crop_spacing_z: float | None = None, transpose_forward=(0, 1, 2), hd95: bool = False,
                    progress: bool = True, tumor_labels=None) -> EvaluationResult:
    """Surface Dice, Dice, volume ratio and detection (optionally HD95 and padding fraction) of every case.

    reference_folder / prediction_folder: nnU-Net segmentation folders with the same file names (``case.nii.gz``).
    output_folder: where the CSV / JSON / Markdown go; default the prediction folder (beside nnU-Net's
    ``summary.json``, which is left alone). labels: label ids or regions (tuples) to evaluate; default from
    ``dataset.json`` (given, or found in the prediction folder or beside the reference folder), else binary 0/1
    masks. tolerance_mm: surface-Dice tolerance. detection_threshold: Dice at or above which a case is detected.
    crop_depth: crop size along z in slices (at ``crop_spacing_z`` mm, native slices if None) for the padding
    fraction pf (paper eq. 4); z is raw axis ``transpose_forward[0]``, as in the plans. tumor_labels: the labels
    whose detection is scored (default all; see :func:`tumor_label_keys`). subtypes_csv: table with ``case_id,subtype`` to split the summaries.
    """
    out = Path(prediction_folder) if output_folder is None else check_output_folder(output_folder)
    per_case, setup = evaluate_cases(reference_folder, prediction_folder, labels=labels, file_ending=file_ending,
                                     dataset_json=dataset_json, tolerance_mm=tolerance_mm,
                                     detection_threshold=detection_threshold, num_processes=num_processes,
                                     crop_depth=crop_depth, crop_spacing_z=crop_spacing_z,
                                     transpose_forward=transpose_forward, subtypes_csv=subtypes_csv, hd95=hd95,
                                     progress=progress, tumor_labels=tumor_labels)
    metrics = summary_metrics(per_case)
    absent = labels_not_scored(per_case)
    if absent:
        warnings.warn(f"label(s) {', '.join(absent)} occur in no reference and no prediction; they are not scored "
                      f"(left out of the summary, NaN in the per-case table)", stacklevel=2)
    summary = {
        "settings": {
            "reference_folder": str(reference_folder), "prediction_folder": str(prediction_folder),
            "file_ending": setup.file_ending, "labels": per_case["label"].unique().tolist(),
            "surface_dice": f"DeepMind surfel NSD at tolerance {tolerance_mm} mm",
            "tolerance_mm": tolerance_mm, "detection_threshold": detection_threshold,
            "crop_depth": crop_depth, "crop_spacing_z": crop_spacing_z,
            "transpose_forward": list(transpose_forward),
            "tumor_labels": None if tumor_labels is None else sorted(int(t) for t in tumor_labels),
            "detection": "scored for the tumour labels only (all evaluated labels when tumor_labels is null)",
            "subtypes_csv": None if subtypes_csv is None else str(subtypes_csv), "n_cases": int(
                per_case["case_id"].nunique()),
            "policy": "both masks empty -> NaN (left out); missed case -> sDSC 0, Dice 0, VR 0; detection over "
                      "cases with a non-empty reference; HD95 of a one-sided empty case -> 373.13 mm",
        },
        "labels": summarize_per_case(per_case[~per_case["label"].isin(absent)], metrics),
        "labels_not_scored": absent,
    }
    if set(MEAN_COLUMNS) <= set(per_case.columns):
        summary["multiclass"] = multiclass_summary(per_case)
    markdown = summary_markdown(summary["labels"], metrics, f"Evaluation of {prediction_folder}")
    if "multiclass" in summary:
        markdown += "\n" + multiclass_markdown(summary["multiclass"])
    if absent:
        markdown += (f"\nNot scored: label(s) {', '.join(absent)} occur in no reference and no prediction.\n")
    with writing_into(out):  # the old set goes first; the marker (summary JSON) comes last
        clear_result_set(out, SUMMARY_JSON, (PER_CASE_CSV, SUMMARY_MD))
        files = {
            "per_case_csv": write_csv(out / PER_CASE_CSV, per_case),
            "summary_md": write_text(out / SUMMARY_MD, markdown + "\n"),
            "summary_json": write_json(out / SUMMARY_JSON, summary),
        }
    return EvaluationResult(per_case, summary, markdown, files)
