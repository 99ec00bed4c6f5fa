"""nnU-Net split surgery for the subtype-restricted arms: one custom fold per subtype appended to
``splits_final.json`` (nnU-Net's own 5-fold split written first when the file is missing; existing folds untouched).

The demo preset's one custom fold (``write_demo_fold``): fold 0 trains on every training case and validates on the
same cases, as nnU-Net's own fold ``all`` does (nnU-Net validates only on preprocessed training cases, and the
demo's held-out cases are its test split). The arms are compared on that test split; the per-epoch pseudo-Dice of
the demo study's training logs is therefore a fit to the training cases, not a held-out score."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnunet_swin.errors import UserError
from nnunet_swin.io import read_json, write_json

if TYPE_CHECKING:
    from nnunet_swin.workflows.study_context import Study


def case_ids(folder: Path, ending: str, channel_suffix: bool) -> list[str]:
    cut = len(ending) + (5 if channel_suffix else 0)
    pattern = f"*_0000{ending}" if channel_suffix else f"*{ending}"
    return sorted(p.name[:-cut] for p in folder.glob(pattern))


def read_subtypes(csv: Path) -> dict[str, str]:
    import pandas as pd
    table = pd.read_csv(csv, dtype={"case_id": str, "subtype": str})
    return dict(zip(table.case_id, table.subtype))


def write_demo_fold(raw_dataset: Path, preprocessed_dataset: Path, file_ending: str = ".nii.gz") -> Path:
    """``splits_final.json`` with fold 0 = every training case of ``raw_dataset/imagesTr`` for training and
    validation (the demo preset's one fold). Written before planning, when the file does not exist yet; a file that
    is there is kept when its fold 0 is that fold, and is an error otherwise."""
    ids = case_ids(raw_dataset / "imagesTr", file_ending, channel_suffix=True)
    fold = {"train": ids, "val": ids}
    splits_file = preprocessed_dataset / "splits_final.json"
    if splits_file.is_file():
        splits = read_json(splits_file, "nnU-Net splits file")
        if not splits or sorted(splits[0].get("train", [])) != ids or sorted(splits[0].get("val", [])) != ids:
            raise UserError(f"{splits_file} fold 0 is not the demo's fold (all {len(ids)} training cases); move the "
                            f"file away or start the study in a new folder (-o)")
        return splits_file
    return write_json(splits_file, [fold])


def default_splits(study: Study) -> list[dict]:
    """nnU-Net's own 5-fold split of the preprocessed cases, exactly as ``nnUNetTrainer.do_split`` would write it."""
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    data_id = study.plans()["configurations"]["3d_fullres"].get("data_identifier", f"{study.plans_name}_3d_fullres")
    folder = study.preprocessed_dataset / data_id
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist; preprocess the dataset first (nnunet-swin plan_and_preprocess)")
    keys = sorted(infer_dataset_class(str(folder)).get_identifiers(str(folder)))
    if len(keys) < 5:
        raise UserError(f"{study.dataset_name} has {len(keys)} training cases, too few for nnU-Net's 5-fold split; "
                        f"write your own {study.preprocessed_dataset / 'splits_final.json'}")
    return generate_crossval_split(keys, seed=12345, n_splits=5)


def custom_fold(subtype_of: dict[str, str], subtype: str, size: int | None = None, seed: int = 0) -> dict:
    """The fold whose training set holds the training cases of one subtype (``size`` of them, drawn with ``seed``,
    when given); every other case validates it."""
    members = sorted(c for c, s in subtype_of.items() if s == subtype)
    if not members:
        names = ", ".join(sorted(set(subtype_of.values())))
        raise UserError(f"no training case has subtype {subtype!r} (the subtypes found are {names}); choose "
                        f"an arm such as only:<one of them>")
    if size is not None and size < len(members):
        members = sorted(np.random.default_rng(seed).choice(members, size, replace=False).tolist())
    chosen = set(members)
    val = sorted(c for c in subtype_of if c not in chosen)
    return {"train": members, "val": val or members[:1]}


def equal_subtype_size(subtype_of: dict[str, str], subtypes: list[str]) -> int:
    """The training-set size every subtype arm gets: the smallest of the subtypes' case counts, so that B-only and
    D-only differ by what they see, not by how much (the paper does not say whether its subtype-restricted models
    were size-matched)."""
    return min(sum(1 for s in subtype_of.values() if s == sub) for sub in subtypes) if subtypes else 0


def custom_folds_current(study: Study) -> bool:
    """Every subtype arm has its recorded fold, still in ``splits_final.json`` as recorded."""
    splits_file = study.preprocessed_dataset / "splits_final.json"
    wanted = [a.subtype for a in study.arms if a.subtype]
    if not wanted:
        return True
    if not splits_file.is_file():
        return False
    splits = read_json(splits_file, "nnU-Net splits file")
    for sub in wanted:
        recorded = study.state.custom_folds.get(sub)
        if recorded is None or int(recorded["fold"]) >= len(splits) or \
                sorted(splits[int(recorded["fold"])]["train"]) != recorded["train"]:
            return False
    return True


def write_custom_folds(study: Study) -> None:
    """Append one fold per subtype arm to ``splits_final.json`` (existing folds are kept as they are). Every subtype
    arm trains on the same number of cases: the smallest subtype's count, the larger ones subsampled with the study's
    seed (``equal_subtype_size``)."""
    wanted = [a.subtype for a in study.arms if a.subtype]
    if not wanted:
        return
    csv = study.paths.output / "subtypes" / "subtypes_train.csv"
    if not csv.is_file():
        for sub in wanted:
            study.state.custom_folds.pop(sub, None)
        study.save()
        raise UserError(f"no {csv.name}: the subtypes step did not finish, so the subtype arms have no fold")
    subtype_of = read_subtypes(csv)
    splits_file = study.preprocessed_dataset / "splits_final.json"
    splits = read_json(splits_file, "nnU-Net splits file") if splits_file.is_file() else default_splits(study)
    changed = not splits_file.is_file()
    size = equal_subtype_size(subtype_of, wanted)
    for sub in wanted:
        fold = custom_fold(subtype_of, sub, size=size or None, seed=study.settings.seed)
        recorded = study.state.custom_folds.get(sub)
        if recorded is not None:
            index = int(recorded["fold"])
            if index < len(splits) and sorted(splits[index]["train"]) == fold["train"]:
                continue
            raise UserError(f"{splits_file} fold {index}, recorded for the {sub}-only arm, no longer holds its "
                            f"training cases; restore the file or start the study in a new folder (-o)")
        for index, existing in enumerate(splits):  # the same fold already there (e.g. another study): reuse it
            if sorted(existing["train"]) == fold["train"] and sorted(existing["val"]) == fold["val"]:
                break
        else:
            splits.append(fold)
            index, changed = len(splits) - 1, True
        study.state.custom_folds[sub] = {"fold": index, "train": fold["train"], "val": fold["val"]}
    if changed:
        write_json(splits_file, splits)
    study.save()
