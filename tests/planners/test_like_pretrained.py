"""`plan_and_preprocess -like_pretrained`: values taken from a checkpoint's metadata or the registry, flags that win or
are refused, warnings where the dataset disagrees, and nothing written on bad input."""
import json

import pytest

from nnunet_swin.datasets.synthetic import SyntheticSpec, make_demo_dataset
from nnunet_swin.errors import UserError
from nnunet_swin.networks.weights.plan_settings import plan_settings
from nnunet_swin.planners.like_pretrained import apply_settings, dataset_disagreements
from nnunet_swin.planners.run import SwinPlanOptions


def test_values_taken_one_line_each_and_explicit_flags_win():
    options, planner, lines = apply_settings(plan_settings("voco_b"), SwinPlanOptions(), None, None)
    assert planner == "SwinUNETRPlanner"
    assert (options.backbone, options.pretraining_spacing, options.normalization, options.cubic_size) == \
        ("swin_unetr_v2", (1.5, 1.5, 1.5), "rescale01", 64)
    assert len(lines) == 4 and all(line.startswith("-like_pretrained voco_b: ") for line in lines)
    assert all("from the registry entry voco_b" in line for line in lines)
    assert options.like_pretrained["checkpoint"] == "voco_b"
    options, _, lines = apply_settings(plan_settings("voco_b"), SwinPlanOptions(cubic_size=96, normalization="zscore"),
                                       "SwinUNETRPlanner", ["2", "1", "1"])
    assert (options.cubic_size, options.normalization, options.pretraining_spacing) == (96, "zscore", None)
    assert "cubic size 96 from -cubic_size (the checkpoint was pretrained on 64^3)" in lines[3]
    assert "normalization zscore from -normalization" in lines[2]
    assert "target spacing 2 x 1 x 1 mm from -overwrite_target_spacing (the checkpoint says 1.5 x 1.5 x 1.5 mm)" \
        in lines[1]


def test_unverified_spacing_is_not_taken_and_says_why():
    options, _, lines = apply_settings(plan_settings("nvidia_swinvit"), SwinPlanOptions(), None, None)
    assert options.pretraining_spacing is None
    assert "target spacing not taken (its spacing is unverified" in lines[1]


def test_backbone_or_planner_the_weights_do_not_fit_is_refused():
    with pytest.raises(UserError, match="loads into preset swin_unetr_v2, -backbone swin_unetr is another"):
        apply_settings(plan_settings("voco_b"), SwinPlanOptions(backbone="swin_unetr"), None, None)
    with pytest.raises(UserError, match="-pl SMITPlanner plans other networks; use -pl SwinUNETRPlanner"):
        apply_settings(plan_settings("voco_b"), SwinPlanOptions(), "SMITPlanner", None)
    with pytest.raises(UserError, match="plans stock networks"):
        apply_settings(plan_settings("voco_b"), SwinPlanOptions(), "ExperimentPlanner", None)


def test_dataset_disagreements():
    ct = plan_settings("suprem").record()
    w = dataset_disagreements(ct, "MR", ["T2"], [3.5, 0.5, 0.5], [1.5, 1.5, 1.5])
    assert len(w) == 2
    assert w[0].startswith("suprem was pretrained on CT, the dataset is MRI (dataset.json channel_names ['T2'])")
    assert "axis 0 x0.43, axis 1 x3, axis 2 x3" in w[1]
    assert dataset_disagreements(ct, "CT", ["CT"], [1.2, 0.8, 0.8], [1.5, 1.5, 1.5]) == []
    assert dataset_disagreements(ct, None, ["CT", "PET"], [1.5] * 3, [1.5] * 3) == []    # mixed: not judged
    mr = plan_settings("brainsegfounder_ukb").record()
    assert "pretrained on MRI, the dataset is CT" in dataset_disagreements(mr, "CT", ["CT"], [1] * 3, [1] * 3)[0]


def _one_line_error(capsys, argv, text):
    from nnunet_swin.cli.main import main

    assert main(["plan_and_preprocess", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnunet-swin plan_and_preprocess: error: ") and text in err[0], err


def test_bad_input_one_line_and_nothing_written(nnunet_dirs, capsys, tmp_path):
    import torch

    make_demo_dataset(nnunet_dirs["nnUNet_raw"], 521, spec=SyntheticSpec(num_train=2, num_test=0, fov_mm=48),
                      progress=False)
    foreign = tmp_path / "my_weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    _one_line_error(capsys, ["-d", "521", "-like_pretrained", str(foreign)],
                    "carries no nnunet-swin pretraining metadata and is no registry checkpoint")
    _one_line_error(capsys, ["-d", "521", "-like_pretrained", "voco_b", "-backbone", "swin_unetr"],
                    "loads into preset swin_unetr_v2")
    _one_line_error(capsys, ["-d", "521", "-like_pretrained", "voco_b", "-pl", "SMITPlanner"],
                    "use -pl SwinUNETRPlanner")
    _one_line_error(capsys, ["-d", "521", "-like_pretrained", "no_such_weights"], "no such file and no registry name")
    assert not any(nnunet_dirs["nnUNet_preprocessed"].iterdir())


@pytest.mark.slow
def test_plan_like_our_checkpoint_and_like_a_registry_entry(nnunet_dirs, run_cli, tmp_path, pretraining_checkpoint):
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    make_demo_dataset(nnunet_dirs["nnUNet_raw"], 522, spec=SyntheticSpec(num_train=3, num_test=0, fov_mm=64),
                      progress=False)
    pre = nnunet_dirs["nnUNet_preprocessed"] / "Dataset522_SyntheticRectum"
    ckpt = pretraining_checkpoint(tmp_path / "pt" / "checkpoint_final.pth", spacing=(1.5, 1.5, 1.5), crop=64)
    out = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "522", "-like_pretrained", str(ckpt), "-np", "1",
                  "-npfp", "1", "--quiet", "--no_pp").stdout
    took = [line for line in out.splitlines() if line.startswith("-like_pretrained checkpoint_final.pth: ")]
    assert len(took) == 4 and all("from its nnunet-swin pretraining metadata" in line for line in took)
    assert "WARNING: -like_pretrained checkpoint_final.pth: checkpoint_final.pth was pretrained on CT, the dataset " \
           "is MRI" in out
    text = (pre / "nnUNetSMITPlans.json").read_text()
    assert str(tmp_path) not in text                                      # the plans name the file, not its path
    plans = json.loads(text)
    for name in ("3d_fullres", "3d_cubic"):
        cfg = plans["configurations"][name]
        assert cfg["spacing"] == [1.5, 1.5, 1.5] and cfg["normalization_schemes"] == ["RescaleTo01Normalization"]
        assert cfg["architecture"]["arch_kwargs"]["backbone"] == "smit_tiny"
        like = cfg["swin"]["like_pretrained"]
        assert like["checkpoint"] == "checkpoint_final.pth" and like["modality"] == "CT"
        assert any("pretrained on CT, the dataset is MRI" in w for w in like["warnings"])
    assert plans["configurations"]["3d_cubic"]["patch_size"] == [64, 64, 64]

    out = run_cli("nnunet-swin", "plan_and_preprocess", "-d", "522", "-like_pretrained", "voco_b",
                  "-cubic_size", "96", "-np", "1", "-npfp", "1", "--quiet", "--no_pp").stdout
    assert "-like_pretrained voco_b: planner SwinUNETRPlanner and backbone swin_unetr_v2" in out
    assert "cubic size 96 from -cubic_size (the checkpoint was pretrained on 64^3)" in out
    assert "WARNING: -like_pretrained voco_b: voco_b was pretrained on CT, the dataset is MRI" in out
    pm = PlansManager(str(pre / "nnUNetSwinUNETRPlans.json"))              # nnU-Net reads the plans
    cubic = pm.get_configuration("3d_cubic")
    assert cubic.patch_size == [96, 96, 96] and cubic.spacing == [1.5, 1.5, 1.5]
    assert cubic.network_arch_init_kwargs["use_v2"] is True
    assert pm.plans["configurations"]["3d_fullres"]["swin"]["like_pretrained"]["checkpoint"] == "voco_b"
