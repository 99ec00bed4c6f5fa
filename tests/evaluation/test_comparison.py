"""The paper's Table 2 protocol (penalties, exclusions, paired tests) and the evaluate / compare commands."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_swin.cli.main import main as cli
from nnunet_swin.errors import UserError
from nnunet_swin.evaluation import compare_folders, compare_tables, wilcoxon_paired


def frame(sdsc, vr, detected, subtypes=None):
    n = len(sdsc)
    df = pd.DataFrame({"case_id": [f"c{i:02d}" for i in range(n)], "label": "1", "dice": np.asarray(sdsc) * 0.9,
                       "surface_dice": sdsc, "volume_ratio": vr, "detected": np.asarray(detected, float),
                       "ref_empty": False, "pred_empty": np.asarray(detected) == 0})
    if subtypes is not None:
        df.insert(1, "subtype", subtypes)
    return df


@pytest.fixture
def three_models():
    rng = np.random.default_rng(0)
    n = 12
    base = rng.uniform(0.4, 0.8, n)
    det_a = np.ones(n)
    det_a[[0, 1]] = 0  # c00 missed by all; c01 missed by A only
    det_b = np.ones(n)
    det_b[0] = 0
    det_c = np.ones(n)
    det_c[[0, 5]] = 0
    subtypes = ["B"] * 6 + ["D"] * 6
    models = {}
    for name, det, gain in (("Base", det_a, 0.0), ("TA", det_b, 0.05), ("ACT", det_c, 0.1)):
        sdsc = np.where(det == 1, base + gain + 0.01 * rng.random(n), 0.0)
        vr = np.where(det == 1, rng.uniform(0.7, 1.3, n), 0.0)
        models[name] = frame(sdsc, vr, det, subtypes)
    return models


def test_penalties_exclusions_and_table(three_models):
    result = compare_tables(three_models)
    assert result.excluded == {"all arms": {"1": ["c00"]}}  # one family by default: every model passed
    pc = result.per_case.set_index(["model", "case_id"])
    assert pc.loc[("Base", "c01"), "surface_dice_penalised"] == 0.1
    assert pc.loc[("Base", "c01"), "volume_ratio_penalised"] == 10.0
    assert pc.loc[("TA", "c01"), "surface_dice_penalised"] == pc.loc[("TA", "c01"), "surface_dice"]
    assert pc.loc[("TA", "c00"), "excluded"] and not pc.loc[("TA", "c01"), "excluded"]
    row = result.table[(result.table["group"] == "all") & (result.table["model"] == "Base")].iloc[0]
    assert (row["n_cases"], row["n_included"], row["n_missed_by_all"]) == (12, 11, 1)
    assert (row["detection_detected"], row["detection_n"]) == (10, 12)
    base = three_models["Base"].set_index("case_id")
    expected = np.r_[0.1, base["surface_dice"].iloc[2:].to_numpy()]
    assert row["surface_dice_median"] == pytest.approx(np.median(expected))
    assert row["surface_dice_n"] == 11


def test_pairwise_tests_bonferroni_and_mcnemar(three_models):
    result = compare_tables(three_models)
    pw = result.pairwise[result.pairwise["group"] == "all"]
    assert len(pw) == 3 * 4  # 3 pairs x (sDSC, VR, Dice, detection)
    sdsc = pw[pw["metric"] == "surface_dice"]
    assert list(zip(sdsc["model_a"], sdsc["model_b"])) == [("Base", "TA"), ("Base", "ACT"), ("TA", "ACT")]
    a = three_models["Base"]["surface_dice"].where(three_models["Base"]["detected"] == 1, 0.1).iloc[1:]
    b = three_models["TA"]["surface_dice"].iloc[1:]
    expected = wilcoxon_paired(a, b)
    first = sdsc.iloc[0]
    assert first["n"] == 11 and first["p"] == pytest.approx(expected["p"])
    assert first["p_bonferroni"] == pytest.approx(min(1.0, 3 * expected["p"]))
    det = pw[(pw["metric"] == "detected") & (pw["model_a"] == "Base") & (pw["model_b"] == "TA")].iloc[0]
    assert det["difference_pp"] == pytest.approx(100 / 12)
    assert (det["only_a"], det["only_b"], det["p"]) == (0, 1, 1.0)
    assert "Base" in result.markdown and "c00" in result.markdown and "pp" in result.markdown


def test_one_p_value_convention_in_every_output(three_models):
    """Markdown shows the Bonferroni-adjusted p for Wilcoxon and McNemar alike; the CSV names both columns."""
    from nnunet_swin.evaluation.reports import format_p

    result = compare_tables(three_models)
    pw = result.pairwise[(result.pairwise["group"] == "all") & (result.pairwise["model_a"] == "Base")
                         & (result.pairwise["model_b"] == "ACT")]
    lines = result.markdown.splitlines()
    line = next(x for x in lines if x.startswith("| ACT vs Base"))
    header = next(x for x in lines if x.startswith("| Comparison"))
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in line.strip("|").split("|")]))
    det = pw[pw["metric"] == "detected"].iloc[0]
    sdsc = pw[pw["metric"] == "surface_dice"].iloc[0]
    assert cells["p (McNemar, Bonferroni)"] == format_p(det["p_bonferroni"])
    assert list(cells.values())[3] == format_p(sdsc["p_bonferroni"])  # the sDSC p follows its estimate and n_eff
    assert "p (McNemar, Bonferroni)" in result.markdown and "p (McNemar)" not in result.markdown


def test_subtype_groups(three_models):
    result = compare_tables(three_models)
    groups = set(result.table["group"])
    assert groups == {"all", "B", "D"}
    d_rows = result.table[(result.table["group"] == "D") & (result.table["model"] == "ACT")].iloc[0]
    assert (d_rows["n_cases"], d_rows["detection_detected"]) == (6, 6)
    b_rows = result.table[(result.table["group"] == "B") & (result.table["model"] == "Base")].iloc[0]
    assert (b_rows["n_cases"], b_rows["n_included"], b_rows["detection_detected"]) == (6, 5, 4)
    assert "subtype D" in result.markdown


def test_custom_penalties_and_mismatched_cases(three_models):
    result = compare_tables(three_models, penalties={"surface_dice": 0.0})
    pc = result.per_case.set_index(["model", "case_id"])
    assert pc.loc[("Base", "c01"), "surface_dice_penalised"] == 0.0
    assert "volume_ratio_penalised" not in result.per_case
    broken = dict(three_models, TA=three_models["TA"].iloc[1:])
    with pytest.raises(UserError, match="different cases"):
        compare_tables(broken)
    with pytest.raises(UserError, match="at least two"):
        compare_tables({"Base": three_models["Base"]})


def _write(path, array, spacing=(0.5, 0.5, 3.0)):
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def model_folders(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(5):
        ref = np.zeros((8, 20, 20), np.uint8)
        ref[2:6, 5:13, 5:13] = 1
        _write(tmp_path / "ref" / f"case_{i}.nii.gz", ref)
        for name, missed in (("modelA", i in (0, 1)), ("modelB", i == 0)):
            pred = np.zeros_like(ref) if missed else np.roll(ref, int(rng.integers(-2, 3)), axis=2)
            _write(tmp_path / name / f"case_{i}.nii.gz", pred)
    return tmp_path


def test_compare_folders_end_to_end(model_folders):
    root = model_folders
    result = compare_folders(root / "ref", [root / "modelA", root / "modelB"], root / "cmp", num_processes=1,
                             progress=False)
    assert result.excluded == {"all arms": {"1": ["case_0"]}}
    for name in ("comparison_per_case.csv", "comparison_table.csv", "comparison_pairwise.csv", "comparison.md",
                 "comparison.json", "comparison_surface_dice.png", "comparison_volume_ratio.png"):
        assert (root / "cmp" / name).is_file(), name
    assert (root / "cmp" / "comparison_surface_dice.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((root / "cmp" / "comparison.json").read_text())
    assert data["excluded_cases"] == {"all arms": {"1": ["case_0"]}}
    assert not any((root / "modelA").glob("summary_extended*"))  # compare writes only into its output folder


def test_cli_evaluate_and_compare(model_folders, capsys):
    root = model_folders
    assert cli(["evaluate", str(root / "ref"), str(root / "modelB"), "-np", "1", "--quiet",
                "--crop-depth", "16"]) == 0
    out = capsys.readouterr().out
    assert "80.0% [37.6" in out and (root / "modelB" / "summary_extended.json").is_file()
    assert cli(["compare", str(root / "ref"), str(root / "modelA"), str(root / "modelB"), "-o", str(root / "c"),
                "--names", "A", "B", "-np", "1", "--quiet", "--no-figures",
                "--missed-volume-ratio", "5"]) == 0
    table = pd.read_csv(root / "c" / "comparison_per_case.csv")
    assert set(table["model"]) == {"A", "B"}
    assert table.loc[(table["model"] == "A") & (table["case_id"] == "case_1"), "volume_ratio_penalised"].item() == 5
    assert not list((root / "c").glob("*.png"))


def test_cli_errors_are_one_line(model_folders, capsys):
    root = model_folders
    (root / "modelA" / "case_3.nii.gz").unlink()
    assert cli(["compare", str(root / "ref"), str(root / "modelA"), str(root / "modelB"), "-o", str(root / "c2"),
                "-np", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "case_3.nii.gz" in err and err.startswith("nnunet-swin compare: error:")
    assert not (root / "c2").exists()
    assert cli(["compare", str(root / "ref"), str(root / "modelB"), "-o", str(root / "c3"), "--quiet"]) == 2
    assert "at least two" in capsys.readouterr().err


def test_families_have_their_own_bonferroni_and_exclusions(three_models):
    """Table 2 {Base, TA, ACT} adjusts over 3 pairs; a two-arm family over 1; each excludes only what its own arms
    all missed (c05 is missed by ACT alone, c01 by Base alone)."""
    from nnunet_swin.evaluation.families import PAPER_FAMILIES, Family

    pair = Family("pair", ("TA", "ACT"))
    result = compare_tables(three_models, families=[PAPER_FAMILIES["table2"], pair])
    assert result.excluded == {"table2": {"1": ["c00"]}, "pair": {"1": ["c00"]}}
    pw = result.pairwise[result.pairwise["group"] == "all"]
    t2 = pw[(pw["family"] == "table2") & (pw["metric"] == "surface_dice")]
    one = pw[(pw["family"] == "pair") & (pw["metric"] == "surface_dice")].iloc[0]
    same = t2[(t2["model_a"] == "TA") & (t2["model_b"] == "ACT")].iloc[0]
    assert same["p"] == pytest.approx(one["p"]) and (same["m"], one["m"]) == (3, 1)
    assert same["p_bonferroni"] == pytest.approx(min(1, 3 * one["p"])) and one["p_bonferroni"] == pytest.approx(one["p"])
    assert one["min_attainable_p_bonferroni"] == pytest.approx(one["min_attainable_p"])
    assert one["n_eff"] == 11 and one["ci_low"] <= one["estimate"] <= one["ci_high"]
    det = pw[(pw["family"] == "pair") & (pw["metric"] == "detected")].iloc[0]
    assert (det["b"], det["c"]) == (1, 0)
    assert "# Family table2: Base, TA, ACT" in result.markdown and "3 pre-specified pair(s)" in result.markdown


def test_a_family_with_an_absent_arm_keeps_its_m(three_models):
    from nnunet_swin.evaluation.families import PAPER_FAMILIES, families_for

    two = {k: three_models[k] for k in ("Base", "ACT")}
    assert [f.name for f in families_for(two)] == ["table2"]
    result = compare_tables(two, families=[PAPER_FAMILIES["table2"], PAPER_FAMILIES["table3"]])
    row = result.pairwise[(result.pairwise["metric"] == "surface_dice") & (result.pairwise["group"] == "all")].iloc[0]
    assert row["family"] == "table2" and row["m"] == 3 and row["p_bonferroni"] == pytest.approx(min(1, 3 * row["p"]))
    assert "Not run: TA" in result.markdown and set(result.excluded) == {"table2"}   # table3 lacks Scratch: skipped
    with pytest.raises(UserError, match="no family"):
        compare_tables(two, families=[PAPER_FAMILIES["table3"]])


def test_cli_family_option(model_folders, capsys):
    root = model_folders
    assert cli(["compare", str(root / "ref"), str(root / "modelA"), str(root / "modelB"), "-o", str(root / "f"),
                "--names", "ACT", "Scratch", "--family", "table3", "--family", "mine=Scratch,ACT", "-np", "1",
                "--quiet", "--no-figures"]) == 0
    data = json.loads((root / "f" / "comparison.json").read_text())
    assert set(data["excluded_cases"]) == {"table3", "mine"}
    assert data["settings"]["families"] == {"table3": ["ACT", "Scratch"], "mine": ["Scratch", "ACT"]}
    capsys.readouterr()
    assert cli(["compare", str(root / "ref"), str(root / "modelA"), str(root / "modelB"), "-o", str(root / "g"),
                "--family", "table9", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown family 'table9'" in err
    assert cli(["compare", str(root / "ref"), str(root / "modelA"), str(root / "modelB"), "-o", str(root / "h"),
                "--family", "table2", "--quiet"]) == 2
    assert "fewer than two of its arms" in capsys.readouterr().err
