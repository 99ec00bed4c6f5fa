"""nnU-Net folder layout: which files pair up, how to read them, which labels to evaluate, subtype tables.

Segmentations are read with nnU-Net's own reader/writer (chosen from ``dataset.json`` or the file ending) and
arrive as (Z, Y, X) arrays with spacing in the same order. nnU-Net modules are imported inside the functions that
need them; the reader/writer registry does not import torch (checked in the tests).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json
from nnunet_swin.raw_dataset.files import nifti_file_problem
from nnunet_swin.raw_dataset.naming import case_id as named_case_id

Label = int | tuple[int, ...]


@dataclass(frozen=True)
class CasePair:
    case_id: str
    reference_file: str
    prediction_file: str


@dataclass(frozen=True)
class DatasetSetup:
    """What the file layer resolved: file ending, reader/writer class, labels (None = binary 0/1 masks) and
    dataset.json's ignore label (voxels where the reference holds it are left out, as nnU-Net does)."""

    file_ending: str
    reader_writer: type
    labels: tuple[Label, ...] | None
    label_names: dict[str, str]
    ignore_label: int | None = None


def _known_endings() -> list[str]:
    from nnunetv2.imageio.reader_writer_registry import LIST_OF_IO_CLASSES

    endings = {e for rw in LIST_OF_IO_CLASSES for e in rw.supported_file_endings}
    return sorted(endings, key=len, reverse=True)


def find_dataset_json(dataset_json, reference_folder, prediction_folder) -> dict | None:
    """``dataset_json`` as given (path or dict), else ``dataset.json`` in the prediction folder (nnU-Net copies it
    there) or next to the reference folder (raw ``labelsTr/..``, preprocessed ``gt_segmentations/..``), else None."""
    if isinstance(dataset_json, dict):
        return dataset_json
    if dataset_json is not None:
        candidates = [Path(dataset_json)]
        if not candidates[0].is_file():
            raise UserError(f"dataset.json not found: {dataset_json}")
    else:
        candidates = [Path(prediction_folder) / "dataset.json", Path(reference_folder).parent / "dataset.json"]
    for path in candidates:
        if path.is_file():
            return read_json(path, "dataset.json")
    return None


def _infer_file_ending(folder: Path) -> str:
    names = [p.name for p in folder.iterdir() if p.is_file()]
    counts = {e: sum(n.endswith(e) for n in names) for e in _known_endings()}
    best = max(counts, key=lambda e: (counts[e], len(e)))
    if counts[best] == 0:
        raise UserError(f"no segmentation files in {folder} (looked for {', '.join(_known_endings())}); "
                        "check the folder or pass --file-ending")
    return best


def _labels_from_dataset_json(dataset: dict) -> tuple[tuple[Label, ...], dict[str, str]]:
    labels, names = [], {}
    for name, value in dataset.get("labels", {}).items():
        if name == "ignore":
            continue
        label = int(value) if not isinstance(value, (list, tuple)) else tuple(int(v) for v in value)
        if label == 0 or label == (0,):
            continue
        labels.append(label)
        names[label_key(label)] = name
    if not labels:
        raise UserError("dataset.json lists no foreground labels; pass --labels")
    return tuple(labels), names


def label_key(label: Label) -> str:
    """Text form of a label id or region, as in nnU-Net's summary.json: ``1`` or ``(1, 2)``."""
    return str(label) if isinstance(label, int) else str(tuple(label))


def resolve_setup(reference_folder, prediction_folder, *, labels=None, file_ending=None,
                  dataset_json=None) -> DatasetSetup:
    reference_folder = Path(reference_folder)
    for name, folder in (("reference", reference_folder), ("prediction", Path(prediction_folder))):
        if not folder.is_dir():
            raise UserError(f"{name} folder does not exist: {folder}")
    dataset = find_dataset_json(dataset_json, reference_folder, prediction_folder)
    if file_ending is None:
        file_ending = dataset["file_ending"] if dataset and "file_ending" in dataset else _infer_file_ending(
            reference_folder)
    names: dict[str, str] = {}
    if labels is not None:
        labels = tuple(int(l) if not isinstance(l, (list, tuple)) else tuple(int(v) for v in l) for l in labels)
        if not labels:
            raise UserError("--labels is empty; give at least one label id")
    elif dataset is not None and "labels" in dataset:
        labels, names = _labels_from_dataset_json(dataset)
    from nnunetv2.imageio.reader_writer_registry import (determine_reader_writer_from_dataset_json,
                                                         determine_reader_writer_from_file_ending)
    try:
        if dataset is not None:
            reader = determine_reader_writer_from_dataset_json({**dataset, "file_ending": file_ending}, verbose=False)
        else:
            reader = determine_reader_writer_from_file_ending(file_ending, verbose=False)
    except RuntimeError:
        raise UserError(f"nnU-Net has no reader for file ending {file_ending!r}; pass --file-ending "
                        "(e.g. .nii.gz)") from None
    ignore = dataset.get("labels", {}).get("ignore") if dataset else None
    return DatasetSetup(file_ending, reader, labels, names, None if ignore is None else int(ignore))


def pair_cases(reference_folder, prediction_folder, file_ending: str) -> list[CasePair]:
    """One pair per reference file; every reference case needs a prediction (extra predictions are ignored)."""
    reference_folder, prediction_folder = Path(reference_folder), Path(prediction_folder)
    refs = sorted(p.name for p in reference_folder.iterdir() if p.is_file() and p.name.endswith(file_ending))
    if not refs:
        raise UserError(f"no reference files ending in {file_ending!r} in {reference_folder}")
    preds = {p.name for p in prediction_folder.iterdir() if p.is_file() and p.name.endswith(file_ending)}
    if not preds:
        raise UserError(f"no prediction files ending in {file_ending!r} in {prediction_folder}")
    missing = [r for r in refs if r not in preds]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(f"{len(missing)} reference case(s) have no prediction in {prediction_folder}: {shown}; "
                        "predict them or evaluate against a reference folder holding only the predicted cases")
    extra = len(preds) - len(refs)
    if extra > 0:
        warnings.warn(f"{extra} prediction file(s) in {prediction_folder} have no reference and are ignored")
    return [CasePair(r[: -len(file_ending)], str(reference_folder / r), str(prediction_folder / r)) for r in refs]


def _origin(properties: dict):
    if "sitk_stuff" in properties:
        return np.asarray(properties["sitk_stuff"]["origin"], dtype=float)
    if "nibabel_stuff" in properties:
        affine = properties["nibabel_stuff"].get("original_affine", properties["nibabel_stuff"].get("affine"))
        return None if affine is None else np.asarray(affine, dtype=float)[:3, 3]
    return None


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def read_pair(pair: CasePair, reader_writer: type) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """(reference, prediction, spacing): (Z, Y, X) label arrays and spacing in mm, after checking the geometry."""
    ref, ref_props = _read_seg(reader_writer, pair.reference_file, pair.case_id, "reference")
    pred, pred_props = _read_seg(reader_writer, pair.prediction_file, pair.case_id, "prediction")
    for what, seg, props in (("reference", ref, ref_props), ("prediction", pred, pred_props)):
        if seg.shape[0] != 1:
            raise UserError(f"case {pair.case_id}: the {what} {Path(getattr(pair, what + '_file')).name} holds "
                            f"{seg.shape[0]} volumes (4D); a segmentation is one 3D label map")
        if seg.shape[1] == 1 and float(props["spacing"][0]) >= DUMMY_2D_SPACING:
            raise UserError(f"case {pair.case_id}: the {what} {Path(getattr(pair, what + '_file')).name} is a 2D "
                            f"image (nnU-Net gives it a dummy {float(props['spacing'][0]):g} mm slice spacing, which "
                            "would be scored as real); evaluate 3D volumes only, or remove the case")
    ref, pred = ref[0], pred[0]
    problems = []
    if ref.shape != pred.shape:
        problems.append(f"shape {pred.shape} vs reference {ref.shape}")
    ref_spacing = np.asarray(ref_props["spacing"], dtype=float)
    pred_spacing = np.asarray(pred_props["spacing"], dtype=float)
    if ref_spacing.shape != pred_spacing.shape or not np.allclose(ref_spacing, pred_spacing, rtol=1e-4, atol=1e-6):
        problems.append(f"spacing {_fmt(pred_spacing)} vs reference {_fmt(ref_spacing)}")
    ref_origin, pred_origin = _origin(ref_props), _origin(pred_props)
    if ref_origin is not None and pred_origin is not None and not np.allclose(ref_origin, pred_origin, atol=1e-3):
        problems.append(f"origin {_fmt(pred_origin)} vs reference {_fmt(ref_origin)}")
    if problems:
        raise UserError(f"case {pair.case_id}: prediction geometry differs from the reference ({'; '.join(problems)}); "
                        "predictions must lie on the reference grid (nnU-Net writes them there)")
    if ref.ndim != 3:
        raise UserError(f"case {pair.case_id}: segmentation is {ref.ndim}D; only 3D volumes are evaluated")
    return ref, pred, tuple(float(s) for s in ref_spacing)


DUMMY_2D_SPACING = 999.0  # nnU-Net's readers give 2D images this slice spacing (or a multiple of it)


def _read_seg(reader_writer: type, path: str, case_id: str, what: str):
    """nnU-Net's ``read_seg``, with an unreadable or truncated file (which SimpleITK would fill with zeros) turned into
    one line naming it."""
    fix = "predict the case again" if what == "prediction" else "replace the file"
    broken = nifti_file_problem(Path(path))
    if broken and not broken.startswith("has "):  # NaN/Inf values are refused with the other value checks
        raise UserError(f"case {case_id}: the {what} {path} is {broken.split(';')[0]}; {fix}")
    try:
        return reader_writer().read_seg(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means a bad file
        lines = str(e).strip().splitlines()
        detail = lines[-1][:160] if lines else type(e).__name__
        raise UserError(f"case {case_id}: cannot read the {what} {path} ({detail}); {fix}") from None


def check_label_values(seg: np.ndarray, case_id: str, what: str) -> None:
    """Refuse non-integer or non-finite values (probabilities, a resampled float label): they would count as
    background."""
    if seg.dtype.kind in "iub":
        return
    finite = np.isfinite(seg)
    if not finite.all():
        raise UserError(f"case {case_id}: {what} holds NaN/Inf values; segmentations hold integer labels")
    fractional = seg[seg != np.round(seg)]
    if fractional.size:
        raise UserError(f"case {case_id}: {what} holds non-integer values (e.g. {float(fractional.flat[0]):g}); "
                        "segmentations are integer label maps (nnUNetv2_predict writes them), not probabilities")


def unevaluated_values(pred: np.ndarray, labels, ignore_label: int | None) -> list[int]:
    """Non-zero prediction values that belong to no evaluated label (or region) and are not the ignore label."""
    if labels is None:
        return []
    members = {int(m) for label in labels for m in (label if isinstance(label, tuple) else (label,))}
    if ignore_label is not None:
        members.add(int(ignore_label))
    return [int(v) for v in np.unique(pred) if v != 0 and int(v) not in members]


def check_binary(seg: np.ndarray, case_id: str, what: str) -> None:
    """Raise when a segmentation holds values other than 0 and 1 while no label ids were given."""
    odd = (seg != 0) & (seg != 1)
    if odd.any():
        values = [int(v) if float(v).is_integer() else float(v) for v in np.unique(seg[odd])[:5]]
        raise UserError(f"case {case_id}: {what} holds label values {values} besides 0/1; say which label(s) to "
                        "evaluate with --labels (or pass the dataset.json)")


def label_mask(seg: np.ndarray, label: Label) -> np.ndarray:
    return seg == label if isinstance(label, int) else np.isin(seg, label)


def load_subtypes(subtypes_csv, case_ids, file_ending: str) -> pd.Series:
    """case_id -> subtype from a CSV with at least ``case_id,subtype``; ids may carry the file ending or a
    ``_0000`` channel suffix. Cases missing from the table get no subtype (a warning)."""
    path = Path(subtypes_csv)
    if not path.is_file():
        raise UserError(f"subtypes table not found: {path}")
    table = pd.read_csv(path, dtype=str)
    if not {"case_id", "subtype"} <= set(table.columns):
        raise UserError(f"{path} needs the columns case_id,subtype; it has {', '.join(table.columns)}")
    known = set(case_ids)

    table = table.dropna(subset=["case_id"]).assign(
        case_id=lambda t: t["case_id"].map(lambda name: named_case_id(name, file_ending, known)))
    table = table.drop_duplicates(["case_id", "subtype"])
    clashes = table["case_id"][table["case_id"].duplicated()].unique().tolist()
    if clashes:
        raise UserError(f"{path} gives several subtypes for case(s) {', '.join(clashes[:5])}")
    mapping = table.set_index("case_id")["subtype"]
    matched = known & set(mapping.index)
    if not matched:
        raise UserError(f"no case id of {path} matches an evaluated case (e.g. {sorted(known)[:3]}); "
                        "case ids are file names without the file ending")
    if len(matched) < len(known):
        warnings.warn(f"{len(known) - len(matched)} case(s) have no subtype in {path}")
    return mapping
