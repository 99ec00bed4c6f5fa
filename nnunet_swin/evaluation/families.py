"""The paper's pre-specified families of comparisons: each family has its own Bonferroni correction (over the model
pairs of its arms, within one metric) and its own exclusion set (cases missed by every arm of the family).

The paper (section 2.5) adjusts "across all pairwise configuration comparisons within each metric" of one table:
Table 2 compares Base, TA and ACT (3 pairs), Table 3 pretrained ACT against Scratch (1 pair). The other families are
this project's additions, each a separate question asked before the data were seen. A family's m is fixed by its
pre-specified arms, also when an arm is missing from a run (the correction then stays conservative).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from nnunet_swin.errors import UserError


@dataclass(frozen=True)
class Family:
    """A named set of arms compared pairwise; ``m`` = number of pairs its Bonferroni correction spans."""

    name: str
    arms: tuple[str, ...]
    description: str = ""

    @property
    def m(self) -> int:
        return math.comb(len(self.arms), 2)


# The one family table: name -> arms (the arm names of the study).
PAPER_FAMILIES = {f.name: f for f in (
    Family("table2", ("Base", "TA", "ACT"), "the paper's Table 2: cubic crop, tumour-aware augmentation, anisotropic crop"),
    Family("table3", ("ACT", "Scratch"), "the paper's Table 3: CT-pretrained ACT against random initialisation"),
    Family("subtype", ("ACT", "B-only", "D-only"), "subtype-restricted training (section 3.2.2)"),
    Family("masked", ("ACT", "Masked"), "padding tokens masked out of attention (the paper's future work)"),
    Family("augmentation", ("ACT", "ACT-noTA"),
           "tumour-aware augmentation at the ACT crop: ACT against the same recipe without it"),
    Family("negative_control", ("ACT", "ACT-rep"), "the same recipe with another seed: training noise"),
    Family("baseline", ("ACT", "CNN"), "a CNN planned and trained by stock nnU-Net on the same folds"),
)}

ALL_ARMS = "all arms"


def parse_family(text: str) -> Family:
    """A paper family by name (``table2``), or a custom one ``NAME=ARM,ARM[,ARM...]``."""
    if "=" in text:
        name, _, arms = text.partition("=")
        arms = tuple(a.strip() for a in arms.split(",") if a.strip())
        if not name.strip() or len(arms) < 2 or len(set(arms)) != len(arms):
            raise UserError(f"family {text!r}: write NAME=ARM,ARM with two or more distinct arms")
        return Family(name.strip(), arms)
    if text not in PAPER_FAMILIES:
        raise UserError(f"unknown family {text!r}; choose from {', '.join(PAPER_FAMILIES)} or write NAME=ARM,ARM")
    return PAPER_FAMILIES[text]


def present_arms(family: Family, models) -> list[str]:
    """The family's arms that were run, in the family's order."""
    have = set(models)
    return [a for a in family.arms if a in have]


def families_for(models) -> list[Family]:
    """The paper families with at least two of their arms among ``models`` (what a study can compare)."""
    return [f for f in PAPER_FAMILIES.values() if len(present_arms(f, models)) >= 2]
