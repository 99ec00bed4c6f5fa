"""Where the study's comparisons lie: one ``nnunet-swin compare --family F`` per pre-specified family
(``evaluation.families``) with at least two of its arms run, in ``comparison/<family>/``, and by subtype in
``comparison_by_subtype/<family>/`` for the families where a subtype breakdown answers something.

Readers (the report, the findings) take the tables from here; :func:`per_case_of_arms` joins the families' per-case
metrics into one row set per arm (an arm's metrics on a case do not depend on the family it was compared in).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnunet_swin.evaluation.families import PAPER_FAMILIES, Family

COMPARISON, BY_SUBTYPE = "comparison", "comparison_by_subtype"
# the negative control asks about training noise overall; a subtype breakdown of it answers nothing
SUBTYPE_FAMILIES = ("table2", "table3", "subtype", "masked", "augmentation", "baseline")


def study_families(arm_names) -> list[Family]:
    """The pre-specified families with at least two of their arms among ``arm_names`` (in the table's order)."""
    have = set(arm_names)
    return [f for f in PAPER_FAMILIES.values() if len([a for a in f.arms if a in have]) >= 2]


def family_folder(root: Path, family: str, by_subtype: bool = False) -> Path:
    return Path(root) / (BY_SUBTYPE if by_subtype else COMPARISON) / family


def comparison_tables(root: Path, by_subtype: bool = False, name: str = "comparison_table.csv") -> dict[str, Path]:
    """family -> its ``name`` file, for the families that wrote one, in the pre-specified order."""
    out = {}
    for family in PAPER_FAMILIES:
        path = family_folder(root, family, by_subtype) / name
        if path.is_file():
            out[family] = path
    return out


def per_case_of_arms(root: Path) -> pd.DataFrame | None:
    """Every arm's per-case rows from the families' ``comparison_per_case.csv`` (by subtype first), each arm once; a
    case's subtype filled in from any family that has it. None when no comparison was written."""
    frames: dict[str, pd.DataFrame] = {}
    for by_subtype in (True, False):
        for path in comparison_tables(root, by_subtype, "comparison_per_case.csv").values():
            table = pd.read_csv(path, dtype={"case_id": str, "subtype": str, "label": str})
            for model, rows in table.groupby("model", sort=False):
                frames.setdefault(model, rows)
    if not frames:
        return None
    subtypes = pd.concat([f[["case_id", "subtype"]] for f in frames.values() if "subtype" in f]) \
        .drop_duplicates("case_id").set_index("case_id")["subtype"] if any("subtype" in f for f in frames.values()) \
        else None
    out = []
    for rows in frames.values():
        if subtypes is not None and "subtype" not in rows:
            rows = rows.assign(subtype=rows["case_id"].map(subtypes))
        out.append(rows)
    return pd.concat(out, ignore_index=True)
