"""What a pretraining checkpoint says about itself, against the fine-tuning plans."""
from nnunet_swin.networks.weights.metadata import (FORMAT, compare_with_plans, describe, read_pretraining_metadata,
                                                  report_lines)

META = {"format": FORMAT, "method": "smart", "backbone": "smit", "spacing_zyx_mm": [1.0, 1.0, 1.0],
        "intensity": {"modality": "CT", "scheme": "ct_hu_window", "hu_window": [-175.0, 250.0],
                      "output_range": [0.0, 1.0]},
        "epochs": 500, "epochs_completed": 500, "num_volumes": 3643, "finished": True, "encoder_loaded": "teacher"}


def test_read_only_our_own_format():
    assert read_pretraining_metadata({"metadata": META, "teacher": {}}) is META
    assert read_pretraining_metadata({"state_dict": {}}) is None
    assert read_pretraining_metadata({"metadata": {"format": "other"}}) is None
    assert read_pretraining_metadata([1, 2]) is None


def test_describe_names_the_file_and_its_settings():
    line = describe(META)
    assert line.startswith("nnunet-swin pretraining (finished): method smart, backbone smit")
    assert "500/500 epochs on 3643 volumes" in line and "1x1x1 mm" in line
    assert "CT, HU window [-175, 250] -> [0, 1]" in line and "teacher encoder" in line


def test_consistent_plans_give_no_warning():
    assert compare_with_plans(META, [1.0, 1.0, 1.0], ["RescaleTo01Normalization"]) == []


def test_spacing_and_range_kind_mismatch_warn():
    w = compare_with_plans(META, [3.0, 0.5, 0.5], ["ZScoreNormalization"])
    assert len(w) == 2
    assert w[0].startswith("spacing differs: the encoder was pretrained at [1.0, 1.0, 1.0] mm")
    assert "pretraining saw [0, 1]" in w[1] and "ZScoreNormalization (z-scored)" in w[1]
    assert len(compare_with_plans(META, [1.0, 1.0, 1.0], ["SomeCustomScheme"])) == 1   # unknown kind: warned
    lines = report_lines(META, [3.0, 0.5, 0.5], ["ZScoreNormalization"])
    assert "pretraining [1.0, 1.0, 1.0]  |  plans [3.0, 0.5, 0.5]" in lines[1]
    assert sum(line.startswith("  WARNING:") for line in lines) == 2


def test_adaptation_plan_block_in_nnssl_shape_names_the_networks_transfer_surface():
    import json

    from nnunet_swin.networks.presets import NETWORK_CLASS_NAME, get_preset
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    from nnunet_swin.networks.weights.metadata import adaptation_plan

    meta = {**META, "backbone": "smit_tiny", "arch_kwargs": get_preset("smit_tiny"), "crop": 64, "in_channels": 1,
            "spacing_zyx_mm": [1.5, 1.0, 1.0]}
    plan = adaptation_plan(meta)
    assert set(plan) == {"architecture_plans", "pretrain_plan", "pretrain_num_input_channels",
                         "recommended_downstream_patchsize", "key_to_encoder", "key_to_stem", "keys_to_in_proj",
                         "key_to_lpe"}
    assert plan["architecture_plans"]["arch_class_name"] == NETWORK_CLASS_NAME
    (config,) = plan["pretrain_plan"]["configurations"].values()   # nnU-Net reads the first configuration
    assert config["spacing"] == [1.5, 1.0, 1.0] and config["patch_size"] == [64, 64, 64]
    assert config["normalization_schemes"] == ["ct_hu_window"] and config["intensity"]["hu_window"] == [-175.0, 250.0]
    assert plan["recommended_downstream_patchsize"] == [64, 64, 64] and plan["pretrain_num_input_channels"] == 1
    # the keys are the ones the network declares, and they name real parameters of a network built from the block
    net = SwinSegmentationNetwork(1, 2, **plan["architecture_plans"]["arch_kwargs"])
    names = [n for n, _ in net.named_parameters()]
    assert plan["key_to_encoder"] == SwinSegmentationNetwork.key_to_encoder
    assert any(n.startswith(plan["key_to_encoder"] + ".") for n in names)
    assert any(n.startswith(plan["key_to_stem"] + ".") for n in names)
    for key in plan["keys_to_in_proj"]:
        assert net.get_parameter(key + ".weight").shape[1] == 1          # the layers that see the input channels
    assert json.loads(json.dumps(plan)) == plan                            # plain JSON, as nnU-Net stores it


def test_describe_and_summary_say_which_encoder_why_and_what_the_monitor_saw():
    from nnunet_swin.networks.weights.metadata import encoder_summary
    meta = {**META, "method": "smit", "backbone": "smit_tiny", "steps": 400, "num_volumes": 13,
            "encoder_loaded": "student", "encoder_rule": "the EMA teacher still holds 0.45 of its random "
            "initialisation (> 0.05) after 400 steps",
            "monitor": {"collapsed": True, "first_collapse": {"epoch": 3, "step": 60, "heads": ["itd", "mpd"]}}}
    line = describe(meta)
    assert "load the student encoder (the EMA teacher still holds 0.45" in line
    assert "collapse in epoch 3 (ITD, MPD)" in line
    summary = encoder_summary(meta)
    assert summary.startswith("smit_tiny encoder from an `nnunet-swin pretrain` run (SMIT, 400 steps on 13 CT")
    assert "student encoder" in summary and "distillation collapsed in epoch 3" in summary
    meta["monitor"] = {"collapsed": False, "first_collapse": None}
    assert "no distillation collapse seen" in encoder_summary(meta) and "saw no collapse" in describe(meta)
    assert "collapse" not in describe(META)                       # older files: nothing claimed
