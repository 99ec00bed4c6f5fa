"""The paper's findings checked on a study folder whose numbers are known: families, estimates, verdicts."""
import json

import numpy as np
import pandas as pd
import pytest

from nnunet_swin.workflows.study_findings import comparable_stage, findings_json, paper_findings

CASES = [f"case_{i}" for i in range(8)]
SUBTYPES = ["B"] * 4 + ["D"] * 4


def _cases(model, sdsc, detected):
    return pd.DataFrame({"case_id": CASES, "subtype": SUBTYPES, "label": "1", "dice": np.asarray(sdsc) * 0.9,
                         "surface_dice": sdsc, "volume_ratio": 1.0, "detected": np.asarray(detected, float),
                         "ref_empty": False, "pred_empty": np.asarray(detected) == 0, "model": model})


@pytest.fixture
def study(tmp_path):
    base = np.linspace(0.4, 0.75, 8)
    ones = np.ones(8)
    b_only = ones.copy()
    b_only[4:7] = 0                                          # B-only misses 3 of 4 dark cases
    per_case = pd.concat([
        _cases("Base", base, ones),
        _cases("TA", base + 0.01 * np.arange(-4, 4), ones),  # mixed signs around 0
        _cases("ACT", base + 0.1 + 0.001 * np.arange(8), ones),  # every case +0.1: exact p 2/256
        _cases("Masked", base + 0.05, ones),
        _cases("B-only", np.where(b_only == 1, base, 0.0), b_only),
    ])
    (tmp_path / "comparison_by_subtype" / "table2").mkdir(parents=True)      # one family's file may hold them all
    per_case.to_csv(tmp_path / "comparison_by_subtype" / "table2" / "comparison_per_case.csv", index=False)
    (tmp_path / "subtypes").mkdir()
    (tmp_path / "subtypes" / "subtypes_summary.json").write_text(json.dumps({"k": 2, "names": ["B", "D"]}))
    pf = np.linspace(0.0, 0.6, len(CASES))
    adi = {"pf": pf}
    for s in range(4):
        adi[f"adi_s{s}"] = 0.2 + pf + s
    base_adi = pd.DataFrame({"model": "Base", "case_id": CASES, **adi})
    act_adi = pd.DataFrame({"model": "ACT", "case_id": CASES, "pf": 0.0,
                            **{f"adi_s{s}": 0.1 + pf / 10 for s in range(4)}})
    (tmp_path / "adi").mkdir()
    pd.concat([base_adi, act_adi]).to_csv(tmp_path / "adi" / "adi_per_scan.csv", index=False)
    (tmp_path / "evaluation" / "Base").mkdir(parents=True)
    pd.DataFrame({"case_id": CASES, "label": 1, "surface_dice": 0.9 - pf}).to_csv(
        tmp_path / "evaluation" / "Base" / "metrics_per_case.csv", index=False)
    state = {"arms": {n: {"status": "done"} for n in ("ACT", "Base", "TA", "Masked", "B-only")}}
    state["arms"]["Scratch"] = {"status": "failed"}
    state["arms"]["Base"]["cost"] = {"patch_size": [64, 64, 64]}
    return tmp_path, state


def _row(rows, finding, metric):
    hits = [r for r in rows if r.finding.startswith(finding) and r.metric.startswith(metric)]
    assert len(hits) == 1, (finding, metric, [(r.finding, r.metric) for r in rows])
    return hits[0]


def test_comparable_stage_from_the_cubic_crop():
    assert comparable_stage({"arms": {"Base": {"cost": {"patch_size": [64, 64, 64]}}}}) == 2   # demo: 8^3 at S2
    assert comparable_stage({"arms": {"TA": {"cost": {"patch_size": [128, 128, 128]}}}}) == 3  # the paper's SMIT
    assert comparable_stage({"arms": {}}) is None


def test_families_estimates_and_verdicts(study):
    rows = paper_findings(*study)
    act = _row(rows, "ACT beats Base", "sDSC")
    assert act.family == "table2" and act.n_eff == 8 and act.p == pytest.approx(2 / 256)
    assert act.p_adjusted == pytest.approx(3 * 2 / 256) and act.min_attainable_p_adjusted == pytest.approx(3 * 2 / 256)
    assert act.ci_low <= act.estimate <= act.ci_high and act.estimate == pytest.approx(0.1035)
    assert act.verdict == "reproduced"
    ta = _row(rows, "TA beats Base", "sDSC")
    assert ta.verdict in ("inconclusive", "contradicted") and ta.verdict != "reproduced"
    # ADI: the paper's stage 3 is demo stage 2; demo stage 3 has no counterpart
    s2 = _row(rows, "ACT lowers ADI at the paper's stage 3", "ADI S2, ACT - Base")
    assert s2.estimate < 0 and s2.p_adjusted == pytest.approx(min(1, 2 * s2.p))
    assert s2.verdict == "reproduced"
    assert _row(rows, "ACT against the cubic crop, ADI at demo stage 3", "ADI S3, ACT - Base").verdict == \
        "not comparable"
    assert _row(rows, "ACT lowers ADI at the paper's stage 3", "ADI S2, ACT - TA").verdict == "not comparable"
    spearman = _row(rows, "ADI rises", "Spearman ADI S2 vs pf, Base")
    assert spearman.estimate == pytest.approx(1.0) and spearman.p == pytest.approx(2 / 40320)   # exact, 8!
    assert spearman.verdict == "reproduced"
    collapse = _row(rows, "B-only training collapses", "detection (pp), own B - D")
    assert collapse.estimate == pytest.approx(75.0) and collapse.min_attainable_p == pytest.approx(2 / 70)
    assert collapse.verdict == "inconclusive"            # Fisher 4/4 vs 1/4: p = 0.14, floor 0.029
    on_dark = _row(rows, "ACT against B-only on the dark subtype", "detection")
    assert on_dark.family == "subtype" and on_dark.n_eff == 3 and on_dark.estimate == pytest.approx(75.0)
    assert on_dark.verdict == "not testable at this size"   # 3 discordant pairs: 3 * 2/8 > 0.05
    assert _row(rows, "pretrained beats Scratch", "sDSC").verdict == "not comparable"
    assert _row(rows, "Masked against ACT", "sDSC").verdict == "no paper result"
    data = findings_json(rows)
    json.dumps(data, allow_nan=False)
    assert list(data[0])[:11] == ["finding", "metric", "family", "estimate", "ci_low", "ci_high", "n_eff",
                                  "min_attainable_p", "p", "p_adjusted", "verdict"]


def test_an_empty_study_folder_is_not_comparable_everywhere(tmp_path):
    rows = paper_findings(tmp_path, {"arms": {}})
    assert rows and all(r.verdict == "not comparable" for r in rows)


# ------------------------------------------------------------------------------------------------ rows as arms are

from nnunet_swin.evaluation import families as fam                      # noqa: E402
from nnunet_swin.evaluation.verdicts import VERDICTS                   # noqa: E402
from nnunet_swin.workflows.study_evidence import family_of   # noqa: E402
from nnunet_swin.workflows.study_findings import COLUMNS   # noqa: E402
from nnunet_swin.workflows.study_more_findings import (COST_TOLERANCE_PP, NOISE_FINDING,  # noqa: E402
                                                       PAPER_COST_REDUCTION)


def _add_arm(root, state, name, sdsc, detected):
    path = root / "comparison_by_subtype" / "table2" / "comparison_per_case.csv"
    table = pd.concat([pd.read_csv(path, dtype={"case_id": str, "subtype": str, "label": str}),
                       _cases(name, sdsc, detected)])
    table.to_csv(path, index=False)
    state["arms"][name] = {"status": "done"}


@pytest.fixture
def more_arms(study, monkeypatch):
    """The study above plus ACT-noTA, ACT-rep and D-only; a family for ACT-noTA when none is pre-specified."""
    root, state = study
    if family_of("ACT", "ACT-noTA") is None:
        monkeypatch.setitem(fam.PAPER_FAMILIES, "ta_at_act", fam.Family("ta_at_act", ("ACT", "ACT-noTA")))
    base = np.linspace(0.4, 0.75, 8)
    _add_arm(root, state, "ACT-noTA", base + 0.05, np.ones(8))
    _add_arm(root, state, "ACT-rep", base + 0.1 + 0.001 * np.arange(8) + 0.2 * (-1) ** np.arange(8), np.ones(8))
    d_only = np.ones(8)
    d_only[0] = 0                                            # D-only misses one bright case
    _add_arm(root, state, "D-only", np.where(d_only == 1, base, 0.0), d_only)
    (root / "subtypes" / "features_test.csv").write_text(
        "case_id,tumour_volume,contrast\n" + "".join(f"{c},{100 * (i + 1)},{0.5 - 0.1 * i:.2f}\n"
                                                     for i, c in enumerate(CASES)))
    state["arms"]["ACT"]["cost"] = {"patch_size": [32, 64, 64], "tokens_per_patch": 16384,
                                    "median_epoch_seconds": 24.0}
    state["arms"]["TA"]["cost"] = {"patch_size": [64, 64, 64], "tokens_per_patch": 32768,
                                   "median_epoch_seconds": 60.0}
    return root, state


def _rows(rows, finding):
    return [r for r in rows if r.finding.startswith(finding)]


def test_rows_of_arms_not_in_the_study_are_left_out(study):
    root, state = study
    rows = paper_findings(root, state)
    assert not _rows(rows, "TA helps at the ACT crop") and not _rows(rows, NOISE_FINDING)
    # B-only ran and D-only is not in the study: the gap rows say which arm was not run
    gap = _rows(rows, "D-only is more even")
    assert len(gap) == 2 and all(r.verdict == "not comparable" and r.reason == "arm D-only not run" for r in gap)
    # neither subtype arm in the study: no gap rows at all
    without = {**state, "arms": {k: v for k, v in state["arms"].items() if k != "B-only"}}
    assert not _rows(paper_findings(root, without), "D-only is more even")


def test_rows_of_new_arms_are_present_with_complete_fields(more_arms):
    root, state = more_arms
    rows = paper_findings(root, state)
    no_ta = _row(rows, "TA helps at the ACT crop", "sDSC")
    assert no_ta.family == family_of("ACT", "ACT-noTA") and no_ta.estimate == pytest.approx(0.0535)
    assert no_ta.n_eff == 8 and no_ta.ci_low <= no_ta.estimate <= no_ta.ci_high
    gap = _row(rows, "D-only is more even", "detection")
    # B-only gap 100 - 25 = 75 pp, D-only gap (own D - other B) 100 - 75 = 25 pp: difference 50 pp
    assert gap.estimate == pytest.approx(50.0) and "B-only gap (own - other) +75" in gap.note
    assert gap.min_attainable_p == pytest.approx(2 / 70) and gap.verdict in VERDICTS
    cost = [r for r in rows if r.family == "cost"]
    assert [round(r.estimate) for r in cost] == [50, 60]
    assert all(r.verdict == ("reproduced" if abs(r.estimate - PAPER_COST_REDUCTION) <= COST_TOLERANCE_PP
                             else "contradicted") for r in cost)
    assert cost[0].p != cost[0].p and cost[0].n_eff is None          # deterministic: no test
    assert _row(rows, "ACT beats Base", "|log VR|").verdict == "no paper result"
    data = findings_json(rows)
    assert all(list(d)[:len(COLUMNS)] == list(COLUMNS) and d["verdict"] in VERDICTS and d["reason"] for d in data)
    json.dumps(data, allow_nan=False)


def test_misses_by_subtype_carry_size_and_contrast(more_arms):
    root, state = more_arms
    per_case = root / "comparison_by_subtype" / "table2" / "comparison_per_case.csv"
    table = pd.read_csv(per_case, dtype={"case_id": str})
    hit = (table.model == "ACT") & table.case_id.isin(["case_6", "case_7"])
    table.loc[hit, "detected"] = 0.0
    table.to_csv(per_case, index=False)
    rows = paper_findings(root, state)
    act = _row(rows, "misses concentrate", "miss rate (pp), D - B, ACT")
    assert act.estimate == pytest.approx(50.0) and act.ci_low < 50 < act.ci_high
    assert "case_6 (D, 700 mm3, contrast -0.10)" in act.note
    clean = _row(rows, "misses concentrate", "misses, ")
    assert clean.verdict == "not comparable" and "Base" in clean.metric


def test_the_negative_control_says_when_seed_noise_is_as_large_as_the_arm_differences(more_arms):
    rows = paper_findings(*more_arms)
    noise = _row(rows, NOISE_FINDING, "sDSC")
    assert noise.family == family_of("ACT", "ACT-rep") and noise.verdict == "no paper result"
    assert "as large as the differences between arms" in noise.note
    assert np.isfinite(noise.ci_low) and noise.n_eff == 8


def test_a_quiet_seed_is_called_smaller_than_the_arm_differences(study):
    root, state = study
    base = np.linspace(0.4, 0.75, 8)
    _add_arm(root, state, "ACT-rep", base + 0.1 + 0.001 * np.arange(8) + 0.001, np.ones(8))
    noise = _row(paper_findings(root, state), NOISE_FINDING, "sDSC")
    assert "smaller than the typical difference between arms" in noise.note
