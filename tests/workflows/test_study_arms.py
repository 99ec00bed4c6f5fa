"""The study's added arms (ACT-noTA, ACT-rep, the stock nnU-Net CNN), one comparison per pre-specified family, and the
CKA floor: which steps and stock commands the table holds; and (slow) the new arms trained at the smoke schedule."""
from __future__ import annotations

import json
import os
import sys
import time

import pandas as pd
import pytest
from test_study import DATASET, PLANS, _settings, toy  # noqa: F401 (toy: the fixture)

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation.families import PAPER_FAMILIES
from nnunet_swin.workflows import study as st
from nnunet_swin.workflows.study_arms import PRESETS, STOCK_PLANS, parse_arm, parse_arms, stock_plans_name
from nnunet_swin.workflows.study_comparisons import per_case_of_arms
from nnunet_swin.workflows.study_runner import Journal

CNN_PLANS = "nnUNetResEncUNetMPlans"


def _table(study):
    study.paths.output.mkdir(parents=True, exist_ok=True)
    journal = Journal(study.state, study.paths.output, study.save, lambda line: None)
    return {s.name: s for s in st.build_table(study, journal)}


def _stock_cnn_plans(toy, name=CNN_PLANS):
    (toy["pre"] / f"{name}.json").write_text(json.dumps({"plans_name": name, "configurations": {"3d_fullres": {
        "patch_size": [32, 64, 64], "data_identifier": f"{name}_3d_fullres",
        "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                         "arch_kwargs": {}}}}}))


def test_the_new_arms_parse_and_the_presets_hold_them():
    assert parse_arm("ACT-noTA").trainer == "SwinACTNoTATrainer" and parse_arm("ACT-noTA").configuration == "3d_fullres"
    assert parse_arm("ACT-rep").trainer == "SwinACTRepTrainer" and parse_arm("ACT-rep").pretrained
    cnn = parse_arm("CNN")
    assert (cnn.trainer, cnn.configuration, cnn.pretrained, cnn.planner, cnn.swin) == \
        ("nnUNetTrainer", "3d_fullres", False, "nnUNetPlannerResEncM", False)
    assert PRESETS["demo"].arms == ("Base", "TA", "ACT", "ACT-rep", "Scratch", "ACT-noTA", "B-only", "D-only",
                                    "CNN", "Masked")
    assert PRESETS["smoke"].arms == ("ACT", "Base")
    arms = parse_arms(["ACT", "CNN"], "smoke", cnn_planner="nnUNetPlannerResEncL")
    assert arms[1].planner == "nnUNetPlannerResEncL" and arms[0].planner is None
    with pytest.raises(UserError, match="--cnn-planner 'ResEncM' is not a stock nnU-Net planner"):
        parse_arms(["CNN"], "smoke", cnn_planner="ResEncM")
    with pytest.raises(UserError, match="unknown arm 'ACT-seed2'; choose from .*ACT-rep.*CNN"):
        parse_arm("ACT-seed2")


def test_the_stock_plans_names_are_nnunets_own():
    for planner, plans in STOCK_PLANS.items():
        assert stock_plans_name(planner, lookup=True) == plans


def test_the_cnn_is_planned_trained_and_predicted_on_its_own_plans(toy):
    study = st.resolve_study(_settings(toy, preset="smoke", arms=["ACT", "ACT-rep", "ACT-noTA", "CNN"]))
    act, rep, nota, cnn = study.arms
    assert [study.trainer(a) for a in study.arms] == ["SwinACTTrainer_smoke", "SwinACTRepTrainer_smoke",
                                                      "SwinACTNoTATrainer_smoke", "nnUNetTrainer_smoke"]
    assert study.model_folder(cnn).name == f"nnUNetTrainer_smoke__{CNN_PLANS}__3d_fullres"
    assert study.model_folder(rep).name == f"SwinACTRepTrainer_smoke__{PLANS}__3d_fullres"
    table = _table(study)
    plan = table["plan CNN"]
    assert plan.command()[1:] == ["-d", str(DATASET), "-pl", "nnUNetPlannerResEncM", "-c", "3d_fullres", "-npfp",
                                  "2", "-np", "2"] and plan.command()[0].endswith("nnUNetv2_plan_and_preprocess")
    assert plan.needs == ("plan",) and not plan.is_done()
    study.settings.cnn_plan_args = ["-overwrite_target_spacing", "1", "1", "1"]
    assert plan.command()[-4:] == ["-overwrite_target_spacing", "1", "1", "1"]
    study.settings.cnn_plan_args = []
    toy_env = dict(study.env, nnUNet_n_proc_DA="0")
    study.env = toy_env
    assert _table(study)["plan CNN"].env == {"nnUNet_n_proc_DA": "1"}   # ResEnc planners refuse 0 threads
    assert "plan ACT" not in table                               # the Swin arms share the study's plans
    train = table["train CNN fold 0"]
    assert "plan CNN" in train.needs and "pretrain encoder" not in train.needs
    assert train.command()[1:] == [str(DATASET), "3d_fullres", "0", "-tr", "nnUNetTrainer_smoke", "-p", CNN_PLANS,
                                   "-device", "cpu"]
    assert table["train ACT-rep fold 0"].command()[5:8] == ["SwinACTRepTrainer_smoke", "-p", PLANS]
    # ADI and CKA do not apply to the CNN: recorded as skipped with the reason
    assert "cka CNN" in table and "no attention windows" in table["adi CNN"].skip()
    assert table["cka CNN"].command is None and table["cka ACT-rep"].command is not None
    # planned: done once every training case is preprocessed
    _stock_cnn_plans(toy)
    assert not plan.is_done()
    (toy["pre"] / f"{CNN_PLANS}_3d_fullres").mkdir()
    for i in range(4):
        (toy["pre"] / f"{CNN_PLANS}_3d_fullres" / f"toy_{i:03d}.pkl").touch()
    assert plan.is_done()
    # the paper preset trains the CNN at the recipe's length
    paper = st.resolve_study(st.StudySettings(output=toy["tmp"] / "paper", dataset_id=DATASET, progress=False,
                                              arms=["ACT", "CNN"]))
    assert [paper.trainer(a) for a in paper.arms] == ["SwinACTTrainer", "nnUNetTrainer_recipe"]


def test_the_cnn_planner_is_remembered_and_the_plans_of_a_trained_cnn_checked(toy):
    settings = _settings(toy, preset="smoke", arms=["ACT", "CNN"], cnn_planner="nnUNetPlannerResEncL")
    study = st.resolve_study(settings)
    study.paths.output.mkdir()
    study.save()
    again = st.resolve_study(_settings(toy, preset="smoke", arms=["ACT", "CNN"]))
    assert again.arm_plans_name(again.arms[1]) == "nnUNetResEncUNetLPlans"
    _stock_cnn_plans(toy, "nnUNetResEncUNetLPlans")
    folder = again.model_folder(again.arms[1])
    folder.mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps({"plans_name": "nnUNetResEncUNetLPlans", "configurations": {
        "3d_fullres": {"patch_size": [16, 16, 16]}}}))
    with pytest.raises(UserError, match="arm CNN: .* was trained on other plans than .*nnUNetResEncUNetLPlans.json"):
        st.resolve_study(_settings(toy, preset="smoke", arms=["ACT", "CNN"]))


def _evaluated(study, *arms):
    for arm in arms:
        csv = study.paths.output / "evaluation" / arm / "metrics_per_case.csv"
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text("case_id\n")


def test_one_compare_per_family_whose_arms_ran(toy):
    study = st.resolve_study(_settings(toy, preset="smoke", arms=["Base", "TA", "ACT", "ACT-rep", "CNN", "Scratch"]))
    table = _table(study)
    compares = sorted(n for n in table if n.startswith("compare "))
    assert compares == ["compare baseline", "compare baseline by subtype", "compare negative_control",
                        "compare table2", "compare table2 by subtype", "compare table3",
                        "compare table3 by subtype"]      # masked, subtype, augmentation: fewer than 2 arms here
    assert "compare" not in table and "compare by subtype" not in table
    # run time: the family's arms that have an evaluation; fewer than two: skipped with the reason
    _evaluated(study, "ACT", "TA")
    assert "1 arm(s) of family negative_control (ACT, ACT-rep)" in table["compare negative_control"].skip()
    _evaluated(study, "ACT-rep", "Base")
    out = study.paths.output
    cmd = table["compare table2"].command()
    assert cmd[3:5] == ["compare", str(study.reference_folder())]
    names = cmd[cmd.index("--names") + 1:cmd.index("--family")]
    assert names == ["Base", "TA", "ACT"] and cmd[cmd.index("--family") + 1] == "table2"
    assert cmd[5:8] == [str(out / "predictions" / n) for n in names]
    assert cmd[cmd.index("-o") + 1] == str(out / "comparison" / "table2") and "--subtypes" not in cmd
    sub = table["compare table2 by subtype"].command()
    assert sub[sub.index("--subtypes") + 1] == str(out / "subtypes" / "subtypes_test.csv")
    assert sub[sub.index("-o") + 1] == str(out / "comparison_by_subtype" / "table2")
    rep = table["compare negative_control"].command()
    assert rep[rep.index("--names") + 1:rep.index("--family")] == ["ACT", "ACT-rep"]
    assert table["compare negative_control"].skip() is None
    assert "skipped" not in table["compare table2 by subtype"].skip()       # waits for the subtypes step
    assert table["compare table2"].outputs() == [out / "comparison" / "table2" / "comparison_table.csv"]


def test_the_cka_floor_step(toy):
    study = st.resolve_study(_settings(toy, preset="smoke", arms=["Base", "ACT", "CNN"], seed=7))
    step = _table(study)["cka random-init"]
    assert step.needs == ("plan",)
    assert step.outputs() == [study.paths.output / "cka" / "random-init" / "cka_summary.json"]
    assert step.skip() is None                      # 2 test images: the 4 training images are used
    (toy["raw"] / "imagesTr" / "toy_000_0000.nii.gz").unlink()
    assert "CKA needs at least 4 images" in step.skip()
    (toy["raw"] / "imagesTr" / "toy_000_0000.nii.gz").touch()
    cmd = step.command()
    assert cmd[3] == "cka" and cmd[cmd.index("--pretrained") + 1] == str(toy["tmp"] / "weights" / "smit_tiny.pth")
    assert "--random-b" in cmd and "-b" not in cmd and "-a" not in cmd
    assert cmd[cmd.index("--plans") + 1] == str(study.plans_file)
    assert cmd[cmd.index("--dataset-json") + 1] == str(toy["raw"] / "dataset.json")
    assert cmd[cmd.index("-c") + 1] == "3d_fullres" and cmd[cmd.index("--seed") + 1] == "7"
    assert cmd[cmd.index("--label-b") + 1] == "random init"
    assert cmd[cmd.index("-o") + 1] == str(study.paths.output / "cka" / "random-init")
    only_cnn = st.resolve_study(_settings(toy, preset="smoke", arms=["CNN", "Scratch"]))
    floor = _table(only_cnn)["cka random-init"].command()
    assert floor[floor.index("-c") + 1] == "3d_fullres"                    # Scratch's layout
    cubic = st.resolve_study(st.StudySettings(output=toy["tmp"] / "cubic", dataset_id=DATASET, progress=False,
                                              preset="smoke", arms=["Base", "CNN"]))
    floor = _table(cubic)["cka random-init"].command()
    assert floor[floor.index("-c") + 1] == "3d_cubic"


def test_the_findings_read_every_familys_per_case_metrics(tmp_path):
    def rows(models, subtype=True):
        out = []
        for m in models:
            for case, sub in (("a", "B"), ("b", "D")):
                out.append({"model": m, "case_id": case, "label": "1", "dice": 0.5, **({"subtype": sub}
                                                                                      if subtype else {})})
        return pd.DataFrame(out)

    for folder, models, subtype in (("comparison/table2", ["Base", "TA", "ACT"], False),
                                    ("comparison_by_subtype/table2", ["Base", "TA", "ACT"], True),
                                    ("comparison/negative_control", ["ACT", "ACT-rep"], False)):
        (tmp_path / folder).mkdir(parents=True)
        rows(models, subtype).to_csv(tmp_path / folder / "comparison_per_case.csv", index=False)
    assert per_case_of_arms(tmp_path / "none") is None
    joined = per_case_of_arms(tmp_path)
    assert list(dict.fromkeys(joined.model)) == ["Base", "TA", "ACT", "ACT-rep"] and len(joined) == 8
    assert joined.set_index(["model", "case_id"]).loc[("ACT-rep", "b"), "subtype"] == "D"    # from table2's
    assert set(PAPER_FAMILIES["augmentation"].arms) == {"ACT", "ACT-noTA"}
    assert PAPER_FAMILIES["augmentation"].description


# ------------------------------------------------------------------------------------------------ slow: training

@pytest.mark.slow
def test_the_new_arms_train_at_the_smoke_schedule(tmp_path, plan_smoke_dataset):
    """Stock nnU-Net plans the CNN (ResEnc-M) and trains it with nnUNetTrainer_smoke; ACT-rep trains with its seed:
    each leaves a model folder with checkpoint_final.pth, through the study's own plan and train steps."""
    from test_study import E2E_DATASET  # noqa: F401

    env = plan_smoke_dataset(tmp_path, 949)["env"]
    old = dict(os.environ)
    os.environ.update(env)
    try:
        study = st.resolve_study(st.StudySettings(output=tmp_path / "study", dataset_id=949, progress=False,
                                                  preset="smoke", arms=["ACT-rep", "CNN"], num_processes=1,
                                                  # stock ResEnc-M at a 2 GB memory target: the smoke data's
                                                  # default plans (patch 14x112x112, batch 4) cost minutes per epoch
                                                  cnn_plan_args=["-gpu_memory_target", "2"]))
        journal = Journal(study.state, study.paths.output, study.save, lambda line: None)
        study.paths.output.mkdir()
        steps = [s for s in st.build_table(study, journal) if s.kind in ("plan", "train")]
        t0 = time.time()
        outcome = st.run_steps(steps, st.make_executor(study, journal), journal)
        seconds = time.time() - t0
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert outcome == {"plan": "done", "plan CNN": "done", "train ACT-rep fold 0": "done",
                       "train CNN fold 0": "done"}, {k: (v.status, v.reason) for k, v in study.state.steps.items()}
    import torch
    for arm, trainer in zip(study.arms, ("SwinACTRepTrainer_smoke", "nnUNetTrainer_smoke")):
        ckpt = torch.load(study.model_folder(arm) / "fold_0" / "checkpoint_final.pth", map_location="cpu",
                          weights_only=False)
        assert ckpt["trainer_name"] == trainer and ckpt["current_epoch"] == 3
        assert ckpt["init_args"]["plans"]["plans_name"] == study.arm_plans_name(arm)
    cnn_log = (study.paths.logs / "train_CNN_fold0.log").read_text()
    epochs = [float(x) for x in __import__("re").findall(r"Epoch time: ([0-9.]+) s", cnn_log)]
    print(f"\nplan CNN + two smoke trainings: {seconds:.0f} s; CNN (ResEnc-M, stock) smoke epochs {epochs} s "
          f"on {os.cpu_count()} CPU cores, python {sys.version.split()[0]}")
    assert len(epochs) == 3
