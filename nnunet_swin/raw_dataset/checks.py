"""Checks on an nnU-Net raw dataset that turn nnU-Net's deep tracebacks (or its silence) into one-line errors, before
anything is written.

``check_raw_dataset`` runs at the start of ``nnunet-swin plan_and_preprocess`` (``--no_dataset_check`` skips it):
one pass over dataset.json, the folder layout and every file, read with nnU-Net's own reader, then one UserError
whose single line counts the problems and names the first few files (``3 problems in Dataset501_X: a.nii.gz: ...;
...; and 1 more``). Fewer than 5 training cases is a printed warning, not an error: planning and fold ``all`` work,
only nnU-Net's default 5-fold split fails later. ``check_image_folder`` applies the file checks to images about to
go through stock ``nnUNetv2_predict``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nnunet_swin.errors import UserError
from nnunet_swin.raw_dataset.files import header_dimension, nifti_file_problem, read_image, reader_for
from nnunet_swin.raw_dataset.folders import num_channels, read_dataset_json
from nnunet_swin.raw_dataset.naming import split_image_name


# ------------------------------------------------------------------------------------------ the whole dataset
MIN_CASES_FOR_FIVE_FOLDS = 5
SHOWN_PROBLEMS = 4
_IMAGE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".gipl", ".png", ".bmp", ".tif", ".tiff")
_SPACING_RTOL = 1e-3


class DatasetProblems:
    """Problems found in a raw dataset, each naming its file; raised as one UserError with a one-line summary."""

    def __init__(self, dataset_name: str):
        self.dataset_name = dataset_name
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")

    def __bool__(self) -> bool:
        return bool(self.items)

    def message(self) -> str:
        shown = "; ".join(self.items[:SHOWN_PROBLEMS])
        more = f"; and {len(self.items) - SHOWN_PROBLEMS} more" if len(self.items) > SHOWN_PROBLEMS else ""
        n = len(self.items)
        return (f"{n} problem{'s' if n > 1 else ''} in {self.dataset_name}: {shown}{more} "
                f"(fix the files, then plan again)")

    def raise_if_any(self) -> None:
        if self.items:
            raise UserError(self.message())


def declared_label_values(dataset: dict) -> tuple[set[int], list[str]]:
    """Label values dataset.json allows in label files (regions expanded, ignore label included), and problems with
    the declaration itself (non-integer, negative, duplicate, not consecutive 0, 1, 2, ... as nnU-Net requires)."""
    values, problems = [], []
    for name, value in dataset["labels"].items():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, bool) or not isinstance(v, int):
                problems.append(f"label {name!r} has value {v!r}; label values are integers")
            elif v < 0:
                problems.append(f"label {name!r} has the negative value {v}; label values are 0, 1, 2, ...")
            else:
                values.append(v)
    ids = sorted(set(values))
    if not problems and ids != list(range(len(ids))):
        problems.append(f"declared label values {ids} are not consecutive; nnU-Net needs 0, 1, 2, ... "
                        f"(renumber the labels in dataset.json and in the label files)")
    return set(ids), problems


def _list_training_files(folder: Path, dataset: dict, problems: DatasetProblems):
    """case id -> ({channel: image path}, label path or None), from dataset.json's ``dataset`` list or the folders."""
    ending = dataset["file_ending"]
    n_channels = num_channels(dataset)
    cases: dict[str, tuple[dict[int, Path], Path | None]] = {}
    if "dataset" in dataset:  # explicit file lists (nnU-Net's alternative to imagesTr/labelsTr)
        for case, entry in dataset["dataset"].items():
            images = [Path(os.path.expandvars(p)) for p in entry.get("images", [])]
            images = [p if p.is_absolute() else folder / p for p in images]
            label = Path(os.path.expandvars(entry.get("label", "")))
            label = label if label.is_absolute() else folder / label
            for p in images + [label]:
                if not p.is_file():
                    problems.add(case, f"{p} (listed in dataset.json's 'dataset') does not exist")
            cases[case] = ({i: p for i, p in enumerate(images)}, label if label.is_file() else None)
        return cases
    images_dir, labels_dir = folder / "imagesTr", folder / "labelsTr"
    if not images_dir.is_dir():
        problems.add("imagesTr", f"folder missing in {folder}; put the training images there")
        return cases
    files = sorted(p for p in images_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        problems.add("imagesTr", "is empty; put the training images there ({case}_0000" + ending + ")")
        return cases
    for p in files:
        if not p.name.endswith(ending):
            if p.name.endswith(_IMAGE_ENDINGS):
                problems.add(p.name, f"file ending differs from dataset.json's file_ending {ending!r}; convert the "
                                     f"file or fix file_ending")
            continue
        parsed = split_image_name(p.name, ending)
        if parsed is None:
            problems.add(p.name, f"lacks the channel suffix; name it {{case}}_0000{ending} (nnU-Net raw naming)")
            continue
        case, channel = parsed
        if channel >= n_channels:
            problems.add(p.name, f"channel {channel:04d}, but dataset.json declares {n_channels} channel(s) "
                                 f"(_0000.._{n_channels - 1:04d}); rename it or add the channel to channel_names")
            continue
        cases.setdefault(case, ({}, None))[0][channel] = p
    labels = {}
    if not labels_dir.is_dir():
        problems.add("labelsTr", f"folder missing in {folder}; put one label file per case there")
    else:
        labels = {p.name[: -len(ending)]: p for p in sorted(labels_dir.iterdir())
                  if p.is_file() and p.name.endswith(ending) and not p.name.startswith(".")}
        for p in sorted(labels_dir.iterdir()):
            if p.is_file() and not p.name.endswith(ending) and p.name.endswith(_IMAGE_ENDINGS):
                problems.add(f"labelsTr/{p.name}", f"file ending differs from dataset.json's file_ending {ending!r}")
    for case in sorted(set(labels) - set(cases)):
        problems.add(f"labelsTr/{labels[case].name}", "has no image in imagesTr (nnU-Net would drop it without a "
                                                       "word); add the image or remove the label")
    out = {}
    for case, (chans, _) in sorted(cases.items()):
        missing = [c for c in range(n_channels) if c not in chans]
        if missing:
            problems.add(case, f"lacks channel(s) {', '.join(f'{case}_{c:04d}{ending}' for c in missing)}")
        if case not in labels and labels_dir.is_dir():
            problems.add(case, f"has no label file labelsTr/{case}{ending}; add it or remove the case's images")
        out[case] = (chans, labels.get(case))
    return out


@dataclass
class _CaseReport:
    problems: list[tuple[str, str]]
    slices: int | None = None          # z extent (None: unreadable)
    grid_problems: list[tuple[str, str]] = field(default_factory=list)  # label/channel off the image grid
    foreground: bool = False


def _check_case(case: str, chans: dict[int, Path], label: Path | None, reader_writer, declared: set[int]) -> _CaseReport:
    import numpy as np

    report = _CaseReport([])
    ref_shape = ref_spacing = None
    ref_name = None
    for channel in sorted(chans):
        path = chans[channel]
        broken = nifti_file_problem(path)
        if broken:
            report.problems.append((path.name, broken))
            if not broken.startswith("has "):
                continue
        if header_dimension(path) == 4:
            report.problems.append((path.name, "is a 4D image; give one 3D volume per channel file "
                                               "({case}_0000, {case}_0001, ...)"))
            continue
        arr, spacing = read_image(reader_writer, path, seg=False)
        if arr is None:
            report.problems.append((path.name, spacing))
            continue
        if arr.shape[0] != 1:
            report.problems.append((path.name, f"holds {arr.shape[0]} volumes (4D); give one 3D volume per channel "
                                               f"file"))
            continue
        if not broken and not np.isfinite(arr).all():  # other formats than NIfTI
            n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            report.problems.append((path.name, f"has {n_bad} NaN/Inf voxel(s); replace them (e.g. by 0) before "
                                               f"planning"))
        if ref_shape is None:
            ref_shape, ref_spacing, ref_name = arr.shape[1:], spacing, path.name
            report.slices = int(arr.shape[1])
        elif arr.shape[1:] != ref_shape or not np.allclose(spacing, ref_spacing, rtol=_SPACING_RTOL):
            report.grid_problems.append((path.name, f"shape {arr.shape[1:]} / spacing {_fmt(spacing)} differ from "
                                               f"{ref_name} ({ref_shape} / {_fmt(ref_spacing)}); resample the "
                                               f"channels onto one grid"))
        del arr
    if label is None:
        return report
    where = f"labelsTr/{label.name}" if label.parent.name == "labelsTr" else label.name
    broken = nifti_file_problem(label)
    if broken:
        report.problems.append((where, broken.replace("voxel(s)", "value(s)")))
        return report
    if header_dimension(label) == 4:
        report.problems.append((where, "is a 4D label file; a label file is one 3D volume of label values"))
        return report
    seg, spacing = read_image(reader_writer, label, seg=True)
    if seg is None:
        report.problems.append((where, spacing))
        return report
    if ref_shape is not None:
        if seg.shape[1:] != ref_shape:
            report.grid_problems.append((where, f"shape {seg.shape[1:]} differs from the image's {ref_shape}; the label "
                                           f"must lie on the image grid"))
        elif not np.allclose(spacing, ref_spacing, rtol=_SPACING_RTOL):
            report.grid_problems.append((where, f"spacing {_fmt(spacing)} differs from the image's {_fmt(ref_spacing)}; "
                                           f"the label must lie on the image grid"))
    if not np.isfinite(seg).all():
        report.problems.append((where, "has NaN/Inf values; label values are integers 0, 1, 2, ..."))
        return report
    values = np.unique(seg)
    fractional = values[values != np.round(values)]
    if fractional.size:
        report.problems.append((where, f"holds non-integer values (e.g. {float(fractional[0]):g}); label files hold "
                                       f"integers (resampled with linear interpolation? use nearest neighbour)"))
        return report
    ints = {int(v) for v in values}
    negative = sorted(v for v in ints if v < 0)
    undeclared = sorted(v for v in ints if v >= 0 and v not in declared)
    if negative:
        report.problems.append((where, f"holds negative values {negative[:5]}; label values are 0, 1, 2, ..."))
    if undeclared:
        report.problems.append((where, f"holds values {undeclared[:5]} not declared in dataset.json's labels "
                                       f"{sorted(declared)}; declare them or fix the file"))
    report.foreground = any(v > 0 for v in ints)
    return report


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def check_raw_dataset(dataset_folder: str | os.PathLike, num_threads: int = 4, warn=print) -> dict:
    """Check a raw nnU-Net dataset in one pass before nnU-Net reads it: every problem names its file.

    Checks dataset.json (labels integer and consecutive), the file layout (imagesTr not empty, channel suffixes
    ``_0000..``, file ending, one label per case and no label without images, numTraining) and every file, read with
    nnU-Net's own reader: truncated ``.nii.gz``, unreadable, 4D, NaN/Inf voxels, a 2D or one-slice image in a 3D
    dataset, channels or label off the image grid (shape, spacing), label values non-integer, negative or not
    declared; and that some label holds foreground. Raises one UserError listing the problems (a one-line summary
    of the first few). Fewer than 5 cases is a warning (``warn``), not an error: planning works, and
    ``nnUNetv2_train ... all`` trains on every case; folds 0-4 need at least 5.
    Returns ``{"cases": n, "warnings": [...]}``.
    """
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(dataset_folder)
    dataset = read_dataset_json(folder)
    problems = DatasetProblems(folder.name)
    declared, label_problems = declared_label_values(dataset)
    for text in label_problems:
        problems.add("dataset.json", text)
    cases = _list_training_files(folder, dataset, problems)
    if cases and dataset["numTraining"] != len(cases):
        problems.add("dataset.json", f"numTraining is {dataset['numTraining']} but imagesTr holds {len(cases)} "
                                     f"case(s); set numTraining to {len(cases)}")
    reader_writer = None
    files = [p for chans, _ in cases.values() for p in chans.values()]
    if files:  # the reader is chosen on an intact file; broken ones are named by the file checks below
        example = next((p for p in files if nifti_file_problem(p) is None), files[0])
        try:
            reader_writer = reader_for(dataset, example)
        except UserError as e:
            problems.add("imagesTr", str(e))
    reports: dict[str, _CaseReport] = {}
    if reader_writer is not None:
        with ThreadPoolExecutor(max(1, int(num_threads))) as pool:
            futures = {case: pool.submit(_check_case, case, chans, label, reader_writer, declared)
                       for case, (chans, label) in cases.items()}
            reports = {case: f.result() for case, f in futures.items()}
    slices = {case: r.slices for case, r in reports.items() if r.slices is not None}
    three_d = bool(slices) and max(slices.values()) > 1
    for case, report in reports.items():
        for where, what in report.problems:
            problems.add(where, what)
        if three_d and slices.get(case) == 1:
            # a one-slice image does not belong in a 3D dataset; its label's grid then differs too (not repeated)
            problems.add(case, "is 2D or has a single slice in a 3D dataset; give the full 3D volume or remove "
                               "the case")
        else:
            for where, what in report.grid_problems:
                problems.add(where, what)
    if reports and not problems and not any(r.foreground for r in reports.values()):
        problems.add("labelsTr", "no label file holds any foreground voxel; check that the labels were written "
                                 "(nnU-Net needs foreground to plan and sample patches)")
    problems.raise_if_any()
    warnings_out = []
    if len(cases) < MIN_CASES_FOR_FIVE_FOLDS:
        text = (f"warning: {folder.name} has {len(cases)} training case(s); nnU-Net's default 5-fold split needs at "
                f"least {MIN_CASES_FOR_FIVE_FOLDS}, so folds 0-4 will fail at training (unless you write your own "
                f"splits_final.json). Train on every case with fold `all` (nnUNetv2_train ... all), or add cases")
        warnings_out.append(text)
        warn(text)
    return {"cases": len(cases), "warnings": warnings_out}


def check_image_folder(images_folder: str | os.PathLike, dataset: dict, num_threads: int = 4) -> int:
    """Check a folder of images to predict (``imagesTs`` naming ``{case}_{XXXX}``) before stock ``nnUNetv2_predict``
    reads it: one bad file there kills the whole run and writes none of the good cases. The file checks of
    :func:`check_raw_dataset`, one UserError naming every bad file; returns the number of cases."""
    from concurrent.futures import ThreadPoolExecutor

    folder = Path(images_folder)
    ending = dataset["file_ending"]
    n_channels = num_channels(dataset)
    problems = DatasetProblems(folder.name)
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist")
    cases: dict[str, dict[int, Path]] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or not p.name.endswith(ending):
            continue
        parsed = split_image_name(p.name, ending)
        if parsed is None or parsed[1] >= n_channels:
            problems.add(p.name, f"is not named {{case}}_0000{ending} .. _{n_channels - 1:04d}{ending} "
                                 f"({n_channels} channel(s)); rename it")
            continue
        cases.setdefault(parsed[0], {})[parsed[1]] = p
    if not cases and not problems:
        raise UserError(f"no *{ending} images in {folder}; give the images to predict ({{case}}_0000{ending})")
    for case, chans in cases.items():
        missing = [c for c in range(n_channels) if c not in chans]
        if missing:
            problems.add(case, f"lacks channel(s) {', '.join(f'{case}_{c:04d}{ending}' for c in missing)}")
    if cases:
        first = next(iter(next(iter(cases.values())).values()))
        reader_writer = reader_for(dataset, first)
        with ThreadPoolExecutor(max(1, int(num_threads))) as pool:
            reports = list(pool.map(lambda item: _check_case(item[0], item[1], None, reader_writer, set()),
                                    cases.items()))
        for report in reports:
            for where, what in report.problems + report.grid_problems:
                problems.add(where, what)
    if problems:
        raise UserError(problems.message().replace("(fix the files, then plan again)",
                                                   "(fix or remove them, then predict again)"))
    return len(cases)
