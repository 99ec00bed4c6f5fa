"""The study report from a study folder's files alone: it leads with the findings, draws its figures, names no
absolute path, and keeps a one-arm study free of empty sections."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from nnunet_swin.trainers.progress import progress_line
from nnunet_swin.workflows.study_report import write_report

CASES = [f"case_{i}" for i in range(8)]
SUBTYPES = ["B"] * 4 + ["D"] * 4
DATASET = "Dataset990_Toy"
FIGURES = ("pf_histogram.png", "paired_surface_dice.png", "paired_dice.png", "paired_abs_log_volume_ratio.png",
           "training_curves.png", "adi_comparable_stage.png", "cka_per_block.png")


def _cases(model, sdsc, detected):
    return pd.DataFrame({"case_id": CASES, "subtype": SUBTYPES, "label": "1", "dice": np.asarray(sdsc) * 0.9,
                         "surface_dice": sdsc, "volume_ratio": np.linspace(0.5, 2.0, 8),
                         "detected": np.asarray(detected, float), "ref_empty": False,
                         "pred_empty": np.asarray(detected) == 0, "model": model})


def _log(epochs: int, iterations: int) -> str:
    lines = [f"2026-01-01 00:00:00: epoch = {iterations} training iterations (paper epoch: 8 training cases)",
             progress_line("start", epoch=0, num_epochs=epochs)]
    for e in range(epochs):
        lines.append(progress_line("epoch", epoch=e, num_epochs=epochs, train_loss=0.5 - 0.05 * e,
                                   val_loss=0.6 - 0.04 * e, pseudo_dice=0.1 * e, ema_pseudo_dice=0.08 * e))
    return "\n".join(lines) + "\n"


def _study(root, arms: dict[str, str]):
    """A finished study folder: arms name -> configuration, each with its log, per-case metrics, ADI and CKA."""
    base = np.linspace(0.4, 0.75, 8)
    state = {"kind": "nnunet-swin study", "dataset": DATASET, "dataset_id": 990, "plans": "nnUNetSMITPlans",
             "preset": "demo", "folds": [0], "arm_order": list(arms), "steps": {},
             "test_split": "test split: imagesTs / labelsTs", "environment": {"nnUNet_raw": "raw"}, "arms": {}}
    (root / "logs").mkdir(parents=True)
    tables = []
    for i, (name, configuration) in enumerate(arms.items()):
        patch = [64, 64, 64] if configuration == "3d_cubic" else [32, 64, 64]
        state["arms"][name] = {"status": "done", "trainer": f"Swin{name}Trainer_demo", "configuration": configuration,
                               "folds": [0], "log": f"logs/train_{name}.log", "model_folder": str(root / "gone"),
                               "cost": {"patch_size": patch, "tokens_per_patch": int(np.prod(patch)) // 8,
                                        "epochs": 5, "median_epoch_seconds": 10.0 * np.prod(patch) / 64 ** 3}}
        (root / "logs" / f"train_{name}.log").write_text(_log(5, 7))
        detected = np.ones(8)
        if i == 1:
            detected[6] = 0
        tables.append(_cases(name, np.where(detected == 1, base + 0.03 * i, 0.0), detected))
    (root / "comparison_by_subtype").mkdir()
    pd.concat(tables).to_csv(root / "comparison_by_subtype" / "comparison_per_case.csv", index=False)
    (root / "subtypes").mkdir()
    (root / "subtypes" / "subtypes_summary.json").write_text(json.dumps(
        {"k": 2, "names": ["B", "D"], "train": {"counts": {"B": 6, "D": 2}}, "test": {"counts": {"B": 4, "D": 4}}}))
    (root / "subtypes" / "features_test.csv").write_text(
        "case_id,tumour_volume,contrast\n" + "".join(f"{c},{100 * (i + 1)},0.2\n" for i, c in enumerate(CASES)))
    pf = np.linspace(0.0, 0.6, 8)
    (root / "adi").mkdir()
    adi = [pd.DataFrame({"model": n, "case_id": CASES, "pf": pf if c == "3d_cubic" else 0.0,
                         **{f"adi_s{s}": (pf if c == "3d_cubic" else 0.0) * (s + 1) / 4 for s in range(4)}})
           for n, c in arms.items()]
    pd.concat(adi).to_csv(root / "adi" / "adi_per_scan.csv", index=False)
    (root / "adi" / "adi_summary.json").write_text(json.dumps({"models": {
        n: {"configuration": c, "n_scans": 8, "pf_mean": 0.3, "stages": {"S2": {"adi": {"mean": 0.1}}}}
        for n, c in arms.items()}}))
    for name in list(arms) + ["random-init"]:
        (root / "cka" / name).mkdir(parents=True)
        value = 0.2 if name == "random-init" else 0.9
        (root / "cka" / name / "cka_summary.json").write_text(json.dumps(
            {"images_used": 8, "mean_diagonal": value, "diagonal": {f"S{s}.B0": value for s in range(4)}}))
    (root / "subtypes" / "subtypes_audit.json").write_text(json.dumps(
        {"splits": {"test": {"n": 8, "adjusted_rand": 0.5, "accuracy": 0.875}}}))
    (root / "raw" / DATASET).mkdir(parents=True)
    (root / "raw" / DATASET / "generator.json").write_text(json.dumps({"hash": "abc123def"}))
    (root / "study.json").write_text(json.dumps(state))
    return state


def _sections(md: str) -> dict[str, str]:
    """Level-2/3 heading -> the text up to the next heading."""
    parts = re.split(r"^(#{2,3} .+)$", md, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def test_the_report_leads_with_the_findings_and_draws_its_figures(tmp_path):
    root = tmp_path / "study"
    _study(root, {"Base": "3d_cubic", "TA": "3d_cubic", "ACT": "3d_fullres"})
    md = write_report(root).read_text()
    headings = [h for h in re.findall(r"^## (.+)$", md, flags=re.M)]
    assert headings[:2] == ["The paper's findings, checked", "Design"]
    for name in FIGURES:
        png = root / "figures" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"](figures/{name})" in md
    findings = json.loads((root / "findings.json").read_text())
    top = _sections(md)["## The paper's findings, checked"]
    assert "| verdict | finding |" in top and "ACT beats Base" in top and "<details>" in top
    assert "abc123def" in md                                          # the generator hash
    assert "test: adjusted Rand 0.50, accuracy 0.88 (n = 8)" in md     # the clusters against the hidden subtype
    assert "| ACT | SwinACTTrainer_demo | 3d_fullres | 5 | 5 | 7 | 35 |" in md   # epochs x iterations
    assert "Demo stage 2 is compared with the paper's stage 3" in md
    assert "floor: untrained" not in md and "Floor: an untrained network" in md
    assert "| floor (untrained) | 8 | 0.200 |" in md
    assert "| TA | case_6 | D | 700 | 0.200 |" in md.replace(".000", "")   # the missed case, its size, contrast
    page = (root / "report.html").read_text()
    assert page.count("<details>") == md.count("<details>") >= 1
    assert 'class="v-' in page
    assert all(s.startswith("data:image/png;base64,") for s in re.findall(r'(?:src|href)="([^"]*)"', page))
    for text in (md, page, json.dumps(findings)):
        assert str(tmp_path) not in text                              # no absolute path of this machine


def test_a_one_arm_study_has_no_empty_section(tmp_path):
    root = tmp_path / "one"
    _study(root, {"ACT": "3d_fullres"})
    md = write_report(root).read_text()
    sections = _sections(md)
    assert all(body for heading, body in sections.items()), [h for h, b in sections.items() if not b]
    top = sections["## The paper's findings, checked"]
    assert "Not checked, their arms were not run:" in top and "ACT beats Base (needs Base)" in top
    assert "ACT lowers the cubic crop's compute (needs TA or Base)" in top
    assert "Paired plots skipped: 1 finished arm with per-case metrics (ACT); they need two." in md
    assert not (root / "figures" / "paired_surface_dice.png").exists()
    assert (root / "figures" / "training_curves.png").is_file()
    assert str(tmp_path) not in md and str(tmp_path) not in (root / "report.html").read_text()


def test_a_folder_without_study_json_is_one_line(tmp_path):
    from nnunet_swin.errors import UserError

    with pytest.raises(UserError, match="holds no readable study.json"):
        write_report(tmp_path)


def test_a_stock_trainer_log_gives_its_curve_and_a_seeded_log_its_seed(tmp_path):
    from nnunet_swin.workflows.study_design import curve, schedule
    from nnunet_swin.workflows.training_log import nnunet_log_curve, progress_curve

    root = tmp_path / "study"
    state = _study(root, {"ACT": "3d_fullres", "CNN": "3d_fullres"})
    stock = "".join(f"2026-01-01 00:00:0{e}.0: Epoch {e}\n2026-01-01 00:00:0{e}.1: train_loss {0.5 - 0.1 * e}\n"
                    f"2026-01-01 00:00:0{e}.2: val_loss {0.6 - 0.1 * e}\n"
                    f"2026-01-01 00:00:0{e}.3: Pseudo dice [np.float32({0.2 * e}), np.float32({0.1 * e})]\n"
                    for e in range(3))
    (root / "logs" / "train_CNN.log").write_text("2026-01-01 00:00:00.0: SomeTrainer: seed 7 (random, numpy)\n"
                                                  "2026-01-01 00:00:00.0: This split has 15 training and 17 "
                                                  "validation cases.\n" + stock)
    table = curve(root, state, "CNN")
    assert progress_curve(stock) is None and list(table.epoch) == [0, 1, 2]
    assert table.pseudo_dice.tolist() == pytest.approx([0.0, 0.15, 0.3]) and table.train_loss.iloc[2] == \
        pytest.approx(0.3)
    assert schedule(root, state, "CNN")["seed"] == 7 and schedule(root, state, "ACT")["seed"] is None
    assert schedule(root, state, "CNN")["training cases"] == 15
    assert schedule(root, state, "ACT")["training cases"] is None
    assert nnunet_log_curve("no epoch here") is None


def test_per_case_rows_are_joined_over_the_families_folders(tmp_path):
    from nnunet_swin.workflows.study_evidence import per_case_table

    base = np.linspace(0.4, 0.75, 8)
    for family, arms in (("table2", ("Base", "ACT")), ("negative_control", ("ACT", "ACT-rep"))):
        (tmp_path / "comparison" / family).mkdir(parents=True)
        pd.concat([_cases(a, base, np.ones(8)) for a in arms]).to_csv(
            tmp_path / "comparison" / family / "comparison_per_case.csv", index=False)
    table = per_case_table(tmp_path)
    assert sorted(set(table.model)) == ["ACT", "ACT-rep", "Base"] and len(table) == 3 * 8
