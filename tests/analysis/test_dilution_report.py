import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from model_folder import plans_dict, write_images, write_model_folder  # noqa: E402

from nnunet_swin.analysis.crop_placement import place_in_crop  # noqa: E402
from nnunet_swin.analysis.dilution_report import measure_dilution  # noqa: E402
from nnunet_swin.analysis.model_loading import load_model_folder  # noqa: E402
from nnunet_swin.networks.token_kinds import embedded_kinds, merged_kinds, window_padded_kinds  # noqa: E402
from nnunet_swin.cli.main import main  # noqa: E402
from nnunet_swin.errors import UserError  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("adi")
    folder = write_model_folder(root)
    write_images(root / "img", z_extents=(12, 20, 40), labels=root / "lab")
    return root, folder


def test_adi_command_end_to_end(setup, tmp_path):
    root, folder = setup
    ev = pd.DataFrame({"case_id": ["case_000", "case_001", "case_002"], "sdsc": [0.3, 0.5, 0.7]})
    ev.to_csv(tmp_path / "eval.csv", index=False)
    out = tmp_path / "out"
    assert main(["adi", "-m", str(folder), "--label", "smit", "-i", str(root / "img"), "-o", str(out), "--quiet",
                 "--evaluation", str(tmp_path / "eval.csv")]) == 0
    table = pd.read_csv(out / "adi_per_scan.csv")
    assert list(table.case_id) == ["case_000", "case_001", "case_002"]
    assert table.pf.tolist() == pytest.approx([1 - 12 / 32, 1 - 20 / 32, 0.0])
    assert {f"adi_s{s}" for s in range(4)} <= set(table.columns)
    assert ((table.adi_s0 >= 0) & (table.adi_s0 <= 1)).all()
    assert table.loc[2, "adi_input_s0"] == 0.0          # no input padding -> no input-padding dilution
    assert table.loc[0, "adi_input_s0"] > 0
    summary = json.loads((out / "adi_summary.json").read_text())
    assert summary["models"]["smit"]["n_scans"] == 3
    for name in ("adi_per_stage.png", "adi_vs_pf.png", "sdsc_binned.png"):
        assert (out / name).stat().st_size > 1000
    # a second configuration from the earlier table appears side by side
    out2 = tmp_path / "out2"
    assert main(["adi", "-m", str(folder), "--label", "again", "-i", str(root / "img"), "-o", str(out2), "--quiet",
                 "--add", f"smit={out / 'adi_per_scan.csv'}"]) == 0
    both = pd.read_csv(out2 / "adi_per_scan.csv")
    assert set(both.model) == {"smit", "again"}
    pd.testing.assert_series_equal(both[both.model == "smit"].adi_s3.reset_index(drop=True),
                                   both[both.model == "again"].adi_s3.reset_index(drop=True))


def test_network_token_kinds_match_hand_propagated_masks(setup):
    """The probe's token kinds per stage equal the max-pool propagation of a hand-made mask (counts per kind)."""
    _, folder = setup
    net = load_model_folder(folder).network
    mask = torch.zeros(1, 32, 64, 64, dtype=torch.bool)
    mask[:, 5:19, 10:60, 3:64] = True                      # odd offsets, padding on every axis
    kinds = [embedded_kinds(mask, (2, 2, 2))]
    for _ in range(3):
        kinds.append(merged_kinds(kinds[-1]))
    expected = [window_padded_kinds(k, (4, 4, 4)) for k in kinds]
    seen = {}

    def record(event):
        seen[event.stage] = torch.bincount(event.token_kind.flatten().long(), minlength=3)

    with torch.no_grad(), net.encoder.attention_probe(record):
        net(torch.randn(1, 1, 32, 64, 64), padding_mask=mask)
    for stage, kinds in enumerate(expected):
        assert seen[stage].tolist() == torch.bincount(kinds.flatten().long(), minlength=3).tolist(), stage


def test_measure_dilution_batches_give_the_same_numbers(setup):
    _, folder = setup
    net = load_model_folder(folder).network
    g = torch.Generator().manual_seed(0)
    items = [(f"c{i}", place_in_crop(torch.randn(1, z, 64, 64, generator=g).numpy(), (32, 64, 64)))
             for i, z in enumerate((10, 24))]
    one = measure_dilution(net, items, batch_size=1)
    two = measure_dilution(net, items, batch_size=2)
    pd.testing.assert_frame_equal(one, two, atol=1e-5, rtol=1e-4)


def test_model_folder_without_our_plans_is_refused(tmp_path):
    folder = tmp_path / "m"
    (folder / "fold_0").mkdir(parents=True)
    plans = plans_dict(network="dynamic_network_architectures.architectures.unet.PlainConvUNet")
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T2"}, "labels": {"background": 0,
                                                     "tumour": 1}, "file_ending": ".nii.gz"}))
    torch.save({"network_weights": {}, "init_args": {"configuration": "3d_fullres"}},
               folder / "fold_0" / "checkpoint_final.pth")
    with pytest.raises(UserError, match="not one of ours"):
        load_model_folder(folder)
    with pytest.raises(UserError, match="plans.json"):
        load_model_folder(tmp_path / "nowhere")


def test_wrong_channel_count_is_a_user_error(setup, tmp_path, capsys):
    _, folder = setup
    write_images(tmp_path / "img2", z_extents=(12,), channels=2)
    code = main(["adi", "-m", str(folder), "-i", str(tmp_path / "img2"), "-o", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "channels [0, 1] but the model takes 1" in capsys.readouterr().err


def test_backbone_mode_from_plans_with_random_weights(setup, tmp_path, capsys):
    root, folder = setup
    out = tmp_path / "bb"
    assert main(["adi", "--plans", str(folder / "plans.json"), "--dataset-json", str(folder / "dataset.json"),
                 "-c", "3d_fullres", "-i", str(root / "img"), "-o", str(out), "--quiet"]) == 0
    summary = json.loads((out / "adi_summary.json").read_text())
    assert summary["models"]["random"]["source"] == "random weights"
    # incomplete backbone options are refused with a usable message
    assert main(["adi", "--plans", str(folder / "plans.json"), "-i", str(root / "img"), "-o", str(out),
                 "--quiet"]) == 2
    assert "--dataset-json" in capsys.readouterr().err
