"""The powered demo preset: its dataset's size and strata from the flags, its one fold, its generator record."""
from __future__ import annotations

import json

import pandas as pd

from nnunet_swin.cli.main import main


def test_demo_flags_size_the_dataset_and_its_one_fold(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "-o", str(out), "--preset", "demo", "--demo-train-cases", "4", "--demo-test-cases", "6",
                 "--print-commands", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all(" 3d_" in line and " 0 -tr " in line for line in lines)      # every arm on fold 0
    raw = out / "workspace" / "nnUNet_raw" / "Dataset501_SyntheticRectum"
    truth = pd.read_csv(raw / "subtypes_truth.csv")
    train, test = truth[truth.split == "train"], truth[truth.split == "test"]
    assert list(train.subtype).count("dark") == 1 and len(train) == 4               # a quarter dark
    assert sorted(test.stratum) == sorted(f"{s}" for s in ("pf=0", "0<pf<0.5", "pf>=0.5") * 2)
    assert sorted(zip(test.subtype, test.stratum)) == sorted((t, b) for t in ("bright", "dark")
                                                             for b in ("pf=0", "0<pf<0.5", "pf>=0.5"))
    assert (test.pf_cubic64 >= 0.5).sum() == 2 and (test[test.stratum == "pf=0"].pf_cubic64 == 0).all()
    splits = json.loads((out / "workspace" / "nnUNet_preprocessed" / raw.name / "splits_final.json").read_text())
    assert splits == [{"train": sorted(train.case_id), "val": sorted(train.case_id)}]
    record = json.loads((raw / "generator.json").read_text())
    assert record["spec"]["appearance"] == "continuous" and record["spec"]["num_train"] == 4
    assert len(record["hash"]) == 64


def test_demo_flags_need_the_demo_preset_and_enough_cases(tmp_path, capsys):
    assert main(["study", "-o", str(tmp_path / "a"), "--demo-train-cases", "8", "-d", "1"]) == 2
    assert "add --preset demo" in capsys.readouterr().err
    assert main(["study", "-o", str(tmp_path / "b"), "--preset", "demo", "--demo-train-cases", "2"]) == 2
    assert "at least 4" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
