"""The paper's findings checked on a study folder whose numbers are known: directions, tests and verdicts."""
import json

import numpy as np
import pandas as pd
import pytest

from nnunet_swin.workflows.study_findings import findings_json, paper_findings

CASES = [f"case_{i}" for i in range(8)]


def _pairs(rows):
    cols = ["label", "group", "metric", "model_a", "model_b", "test", "n", "median_difference", "p", "p_bonferroni",
            "difference_pp"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


@pytest.fixture
def study(tmp_path):
    (tmp_path / "comparison").mkdir()
    _pairs([
        # ACT vs Base: sDSC gain +0.1 (b - a with a = Base), significant; detection no difference
        (1, "all", "surface_dice", "Base", "ACT", "wilcoxon", 8, 0.1, 0.004, 0.012, np.nan),
        (1, "all", "detected", "ACT", "Base", "mcnemar_exact", 8, np.nan, 1.0, 1.0, 0.0),
        # Masked listed as model_b against ACT: a lower sDSC
        (1, "all", "surface_dice", "ACT", "Masked", "wilcoxon", 8, -0.05, 0.2, 0.6, np.nan),
    ]).to_csv(tmp_path / "comparison" / "comparison_pairwise.csv", index=False)
    (tmp_path / "comparison_by_subtype").mkdir()
    _pairs([
        (1, "D", "surface_dice", "Base", "TA", "wilcoxon", 3, -0.2, 0.25, 0.5, np.nan),     # TA worse on D
        (1, "D", "detected", "ACT", "B-only", "mcnemar_exact", 4, np.nan, 0.5, 0.5, -50.0),
    ]).to_csv(tmp_path / "comparison_by_subtype" / "comparison_pairwise.csv", index=False)
    pd.DataFrame({"label": 1, "group": ["B", "D"], "model": "B-only", "detection_detected": [10, 2],
                  "detection_n": [10, 10]}).to_csv(tmp_path / "comparison_by_subtype" / "comparison_table.csv",
                                                   index=False)
    (tmp_path / "subtypes").mkdir()
    (tmp_path / "subtypes" / "subtypes_summary.json").write_text(json.dumps({"k": 2, "names": ["B", "D"]}))
    pf = np.linspace(0.0, 0.6, len(CASES))
    base = pd.DataFrame({"model": "Base", "case_id": CASES, "pf": pf, "adi_s3": 0.2 + pf, "adi_input_s3": pf})
    act = pd.DataFrame({"model": "ACT", "case_id": CASES, "pf": 0.0, "adi_s3": 0.1 + pf / 10, "adi_input_s3": 0.0})
    (tmp_path / "adi").mkdir()
    pd.concat([base, act]).to_csv(tmp_path / "adi" / "adi_per_scan.csv", index=False)
    (tmp_path / "evaluation" / "Base").mkdir(parents=True)
    pd.DataFrame({"case_id": CASES, "label": 1, "surface_dice": 0.9 - pf}).to_csv(
        tmp_path / "evaluation" / "Base" / "metrics_per_case.csv", index=False)
    state = {"arms": {n: {"status": "done"} for n in ("ACT", "Base", "TA", "Masked", "B-only")}}
    state["arms"]["Scratch"] = {"status": "failed"}
    state["arms"]["ACT"]["cost"] = {"tokens_per_patch": 100, "median_epoch_seconds": 10.0}
    state["arms"]["Masked"]["cost"] = {"tokens_per_patch": 200, "median_epoch_seconds": 19.0}
    return tmp_path, state


def _row(rows, finding, metric):
    hits = [r for r in rows if r.finding.startswith(finding) and r.metric.startswith(metric)]
    assert len(hits) == 1, (finding, metric, [(r.finding, r.metric) for r in rows])
    return hits[0]


def test_directions_tests_and_verdicts(study):
    rows = paper_findings(*study)
    adi = _row(rows, "ACT lowers stage-3 ADI", "ADI S3 vs Base")
    assert adi.verdict == "reproduced" and adi.p < 0.05 and "Base 0.500 -> ACT 0.130" in adi.here
    assert "input padding 0.300 -> 0.000" in adi.here
    assert _row(rows, "ACT lowers stage-3 ADI", "ADI S3 vs TA").verdict.startswith("not testable")  # TA not in ADI
    spearman = _row(rows, "ADI rises", "Spearman S3, Base")
    assert spearman.verdict == "reproduced" and "rho +1.000" in spearman.here and "7/8 padded" in spearman.here
    assert _row(rows, "padding lowers surface Dice", "Spearman sDSC vs pf, Base").verdict == "reproduced"
    sdsc = _row(rows, "ACT beats Base", "sDSC")
    assert sdsc.verdict == "reproduced" and "ACT - Base: +0.100" in sdsc.here and "Bonferroni 0.012" in sdsc.test
    assert _row(rows, "ACT beats Base", "detection").verdict == "no difference"
    assert _row(rows, "TA helps the dark subtype", "sDSC").verdict == "opposite direction"
    assert _row(rows, "TA helps the dark subtype", "detection").verdict.startswith("not testable")
    collapse = _row(rows, "B-only training collapses", "detection, own B vs D")
    assert collapse.verdict == "reproduced" and "10/10 on B, 2/10 on D" in collapse.here      # Fisher p ~ 7e-4
    paired = [r for r in rows if r.finding.startswith("B-only") and r.metric == "detection"][0]
    assert "ACT - B-only: +50.0 pp" in paired.here and paired.verdict == "same direction, not significant"
    assert _row(rows, "pretrained beats Scratch", "sDSC").verdict == "not testable: arm Scratch not finished"
    masked = _row(rows, "Masked against ACT", "sDSC")
    assert "Masked - ACT: -0.050" in masked.here and masked.verdict == "no paper result (future work)"
    assert "2.00x tokens, 1.90x epoch time" in _row(rows, "Masked against ACT", "cost").here
    json.dumps(findings_json(rows), allow_nan=False)                 # NaN-free, ready for findings.json


def test_an_empty_study_folder_is_not_testable_everywhere(tmp_path):
    rows = paper_findings(tmp_path, {"arms": {}})
    assert rows and all(r.verdict.startswith("not testable") for r in rows)
