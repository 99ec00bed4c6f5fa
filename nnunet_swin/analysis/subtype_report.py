"""`nnunet-swin subtypes`: appearance features from raw image-label folders, clustering, tables and figures.

Reads nnU-Net raw folders (``imagesTr/{case}_{XXXX}{ending}`` with ``labelsTr/{case}{ending}``), computes the seven
features of ``analysis.subtypes`` per case on one image channel, fits (or loads) the subtype model, and writes:
``features_<split>.csv``, ``subtypes_<split>.csv`` (``case_id,subtype``, read by ``nnunet-swin compare``),
``subtype_model.json``, ``cluster_validity.png``, ``subtype_scatter.png`` and ``subtypes_summary.json``.

The audit: when the dataset holds the hidden subtype of every case (``subtypes_truth.csv`` beside ``imagesTr`` /
``imagesTs``, as ``nnunet-swin make_demo_dataset`` writes it, or a table given with ``--truth``), the k-means
clusters are compared with it and ``subtypes_audit.json`` written: per split and over both, the adjusted Rand index
(scikit-learn), the confusion table (cluster -> latent label -> cases) and the accuracy of the best one-to-one
cluster-to-label mapping.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from nnunet_swin.analysis import figures
from nnunet_swin.analysis.model_loading import read_image_and_label
from nnunet_swin.analysis.subtypes import SubtypeModel, assign_subtypes, check_k, fit_subtypes, tumor_features
from nnunet_swin.errors import UserError
from nnunet_swin.raw_dataset.naming import list_cases
from nnunet_swin.io import write_csv, write_json


def pair_images_and_labels(images: str | Path, labels: str | Path, file_ending: str,
                           channel: int = 0) -> dict[str, tuple[list[Path], Path]]:
    """case id -> (all channel files, label file). Every image needs a label (UserError otherwise)."""
    images, labels = Path(images), Path(labels)
    if not labels.is_dir():
        raise UserError(f"folder {labels} not found")
    cases = list_cases(images, file_ending)
    missing = [c for c in cases if not (labels / f"{c}{file_ending}").is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) have no label in {labels} (e.g. {', '.join(missing[:5])}); "
                        f"appearance features need the tumour mask of every case")
    out = {}
    for case, files in cases.items():
        if channel >= len(files):
            raise UserError(f"case {case} has no channel {channel:04d} (has {len(files)}); pass --channel")
        out[case] = (files, labels / f"{case}{file_ending}")
    return out


def feature_table(pairs: dict[str, tuple[list[Path], Path]], channel: int = 0, progress: bool = True,
                  tumor_labels=None) -> pd.DataFrame:
    """One row per case (index ``case_id``) with the seven features of the tumour labels (default all foreground)."""
    rows = []
    for case, (files, label) in tqdm(pairs.items(), desc="features", disable=not progress):
        img, seg, spacing = read_image_and_label(files, label)
        if channel >= img.shape[0]:
            raise UserError(f"case {case} has {img.shape[0]} channel(s); --channel {channel} does not exist")
        try:
            feats = tumor_features(img[channel], seg, spacing, tumor_labels=tumor_labels)
        except UserError as e:
            raise UserError(f"case {case}: {e}") from None
        rows.append({"case_id": case, **feats})
    return pd.DataFrame(rows).set_index("case_id")


def agreement(assigned: pd.Series, truth: pd.Series) -> dict:
    """Adjusted Rand index and the accuracy of the best one-to-one cluster->truth mapping."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    common = assigned.index.intersection(truth.index)
    if len(common) == 0:
        raise UserError("the truth table shares no case ids with the images")
    a, t = assigned.loc[common].astype(str), truth.loc[common].astype(str)
    table = pd.crosstab(a, t)
    r, c = linear_sum_assignment(-table.to_numpy())
    mapping = {table.index[i]: table.columns[j] for i, j in zip(r, c)}
    acc = float(sum(table.iloc[i, j] for i, j in zip(r, c)) / len(common))
    return {"n": int(len(common)), "adjusted_rand": float(adjusted_rand_score(t, a)), "accuracy": acc,
            "mapping": mapping, "crosstab": table.to_dict()}


TRUTH_FILE = "subtypes_truth.csv"


def find_truth(*image_folders) -> Path | None:
    """The dataset's ``subtypes_truth.csv`` (the folder above an images folder), or None."""
    for folder in image_folders:
        if folder is not None and (Path(folder).parent / TRUTH_FILE).is_file():
            return Path(folder).parent / TRUTH_FILE
    return None


def audit(assigned: dict[str, pd.Series], truth: pd.Series) -> dict:
    """The clusters of each split (and of all splits together, when no case id is in two) against the latent labels: ``n``, ``adjusted_rand``,
    ``accuracy`` (best one-to-one mapping), ``mapping`` and ``confusion`` (cluster -> latent label -> cases)."""
    out = {}
    parts = dict(assigned)
    together = pd.concat(list(assigned.values())) if assigned else pd.Series(dtype=str)
    if len(parts) > 1 and together.index.is_unique:   # (a case id in both splits: the truth table cannot tell them)
        parts["all"] = together
    for split, clusters in parts.items():
        a = agreement(clusters, truth)
        common = clusters.index.intersection(truth.index)
        table = pd.crosstab(clusters.loc[common].astype(str), truth.loc[common].astype(str))
        a["confusion"] = {str(c): {str(t): int(n) for t, n in row.items()} for c, row in table.iterrows()}
        a.pop("crosstab", None)
        out[split] = a
    return out


def read_truth(path: str | Path) -> pd.Series:
    df = pd.read_csv(path, dtype={"case_id": str})
    if not {"case_id", "subtype"} <= set(df.columns):
        raise UserError(f"{path} needs columns case_id,subtype; it has {', '.join(df.columns)}")
    return df.set_index("case_id")["subtype"]


def run_subtypes(out_dir: str | Path, train: tuple[str, str] | None = None, test: tuple[str, str] | None = None,
                 model_path: str | Path | None = None, file_ending: str = ".nii.gz", channel: int = 0,
                 k_range: tuple[int, int] = (2, 5), k: int | None = None, seed: int = 0,
                 truth: str | Path | None = None, progress: bool = True, tumor_labels=None) -> dict:
    """Fit on ``train`` (images, labels) and/or apply to ``test`` with a fitted or stored model."""
    out = Path(out_dir)
    if train is None and model_path is None:
        raise UserError("give training images/labels to fit, or --model subtype_model.json to apply")
    if train is None and test is None:
        raise UserError("nothing to do: give training and/or test images with labels")
    if train is not None:
        check_k(k_range, k)  # before reading any image
    elif model_path is not None and not Path(model_path).is_file():
        raise UserError(f"subtype model {model_path} does not exist; give the subtype_model.json a fitting run "
                        f"wrote (`nnunet-swin subtypes --train-images ... --train-labels ... -o OUT`)")
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"features": "see nnunet_swin.analysis.subtypes", "file_ending": file_ending, "channel": channel,
                     "tumor_labels": None if tumor_labels is None else sorted(int(t) for t in tumor_labels)}
    tables: dict[str, pd.DataFrame] = {}
    if train is not None:
        feats = feature_table(pair_images_and_labels(*train, file_ending, channel), channel, progress, tumor_labels)
        model = fit_subtypes(feats, k_range=k_range, seed=seed, k=k)
        model.save(out / "subtype_model.json")
        figures.plot_cluster_validity(pd.DataFrame(model.validity), model.k, out / "cluster_validity.png")
        tables["train"] = assign_subtypes(model, feats)
    else:
        model = SubtypeModel.load(model_path)
    if test is not None:
        feats = feature_table(pair_images_and_labels(*test, file_ending, channel), channel, progress, tumor_labels)
        tables["test"] = assign_subtypes(model, feats)
    summary.update({"k": model.k, "names": model.names, "validity": model.validity,
                    "model": str(out / "subtype_model.json") if train is not None else str(model_path)})
    truth_series = read_truth(truth) if truth else None
    for split, t in tables.items():
        write_csv(out / f"features_{split}.csv", t.reset_index())
        write_csv(out / f"subtypes_{split}.csv", t.reset_index()[["case_id", "subtype"]])
        summary[split] = {"n": int(len(t)), "counts": t.subtype.value_counts().to_dict()}
        if truth_series is not None:
            summary[split]["agreement"] = agreement(t.subtype, truth_series)
    figures.plot_subtype_scatter(tables, out / "subtype_scatter.png")
    audit_truth = Path(truth) if truth else find_truth(*(pair[0] for pair in (train, test) if pair is not None))
    if audit_truth is not None:
        labels = truth_series if truth_series is not None else read_truth(audit_truth)
        write_json(out / "subtypes_audit.json",
                   {"truth": audit_truth.name, "latent_labels": sorted(labels.astype(str).unique().tolist()),
                    "k": model.k, "names": model.names,
                    "splits": audit({split: t.subtype for split, t in tables.items()}, labels)})
        summary["audit"] = "subtypes_audit.json"
    write_json(out / "subtypes_summary.json", summary)
    return summary
