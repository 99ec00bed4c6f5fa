"""Checkpoint adapters on synthetic checkpoints with the exact key names and shapes of each public layout.

The key lists in ``keys/`` are the recorded layouts (NVIDIA ``model_swinvit.pt``, MONAI 1.6.1 ``SwinUNETR``, SMIT
``SMIT_3D_Seg`` 128 and the SMIT original-repo encoder). Every tensor gets distinct random values; each test checks by
value that a checkpoint key ends in the encoder parameter an independently written rule says it should.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
from monai.networks import nets as monai_nets

from nnunet_swin.cli import main as cli_main
from nnunet_swin.errors import UserError
from nnunet_swin.networks import SwinEncoder, SwinSegmentationNetwork, inspect_checkpoint, load_pretrained_encoder
from nnunet_swin.networks.attention import relative_position_index
from nnunet_swin.networks.presets import get_preset
from nnunet_swin.networks.segmentation import ENCODER_KEYS

KEYS = Path(__file__).parent / "keys"


def synthetic(filename: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Tensors for every ``name (shape) dtype`` line; index buffers get the true Swin index."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for line in (KEYS / filename).read_text().splitlines():
        m = re.match(r"(\S+) \(([\d, ]*)\) (\w+)", line)
        name, shape, dtype = m.group(1), tuple(int(s) for s in m.group(2).split(",") if s.strip()), m.group(3)
        if dtype == "int64":
            side = round(shape[0] ** (1 / 3))
            out[name] = relative_position_index((side,) * 3, (side,) * 3)
        else:
            out[name] = torch.randn(*shape, generator=g)
    return out


def net_for(preset: str, in_ch: int = 1, **changes) -> torch.nn.Module:
    """A module holding only ``.encoder`` (building the 50M-parameter decoder would only cost time here)."""
    kw = get_preset(preset)
    kw.update(changes)
    holder = torch.nn.Module()
    holder.encoder = SwinEncoder(in_ch, **{k: v for k, v in kw.items() if k in ENCODER_KEYS})
    return holder


def swin_unetr_target(key: str) -> str | None:
    """Independent rule: NVIDIA / MONAI encoder key -> our parameter name (None for derived index buffers)."""
    key = key.replace("module.", "", 1).replace("swinViT.", "", 1)
    if key.endswith("relative_position_index"):
        return None
    m = re.match(r"layers(\d)\.0\.(.*)", key)
    if m:
        key = f"layers.{int(m.group(1)) - 1}.{m.group(2)}"
    return "encoder." + key.replace("linear1", "fc1").replace("linear2", "fc2")


def smit_target(key: str) -> str | None:
    key = key.replace("transformer.", "", 1)
    if key.endswith("relative_position_index") or key == "mask_token":
        return None
    m = re.match(r"norm(\d)\.(\w+)$", key)
    if m:
        return f"encoder.skip_norms.{m.group(1)}.{m.group(2)}"
    return "encoder." + key


def assert_landed(net, ckpt: dict, rule) -> int:
    params = net.state_dict()
    checked = 0
    for key, value in ckpt.items():
        target = rule(key)
        if target is None:
            continue
        assert target in params, key
        assert torch.equal(params[target], value), f"{key} did not land in {target}"
        checked += 1
    enc = {k for k in params if k.startswith("encoder.")}
    assert checked == len(enc)  # and nothing of the encoder was left out
    return checked


def test_nvidia_model_swinvit_every_key_lands():
    ckpt = synthetic("model_swinvit_expected_keys.txt")
    net = net_for("swin_unetr")
    report = load_pretrained_encoder(net, {"state_dict": ckpt})
    assert report.complete and report.source_format == "nvidia_swinvit"
    assert assert_landed(net, ckpt, swin_unetr_target) == 118
    assert len(report.ignored) == 8 and all("equals the standard index" in r for r in report.ignored.values())


def test_nvidia_weights_compute_what_monai_load_from_computes():
    """Same file through MONAI's own ``load_from`` and through our adapter: identical encoder features."""
    ckpt = {k: v * 0.1 for k, v in synthetic("model_swinvit_expected_keys.txt", seed=3).items()
            if not k.endswith("index")}
    ckpt.update({k: v for k, v in synthetic("model_swinvit_expected_keys.txt").items() if k.endswith("index")})
    ref = monai_nets.SwinUNETR(1, 2, feature_size=48).eval()
    ref.load_from({"state_dict": ckpt})
    net = net_for("swin_unetr", merge_order="monai16").eval()  # MONAI 1.6 merge order for a bit-level comparison
    load_pretrained_encoder(net, {"state_dict": ckpt})
    x = torch.randn(1, 1, 32, 32, 64)
    with torch.no_grad():
        mine = net.encoder(x)
        theirs = ref.swinViT(x, True)
    for a, b in zip(mine, theirs):
        assert (a - b).abs().max().item() < 1e-4


@pytest.mark.parametrize("prefix", ["", "module."])
def test_monai_swinunetr_state_dict(prefix):
    ckpt = {prefix + k: v for k, v in synthetic("monai161_swinunetr_f48_state_dict.txt", seed=1).items()}
    net = net_for("swin_unetr")
    report = load_pretrained_encoder(net, ckpt)
    assert report.complete and report.source_format == "monai_swinunetr"
    assert_landed(net, {k: v for k, v in ckpt.items() if "swinViT." in k}, swin_unetr_target)
    decoder = [k for k, r in report.ignored.items() if r.startswith("decoder")]
    assert len(decoder) == 159 - 126


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_smit128_finetuned_checkpoint(wrapper):
    ckpt = synthetic("smit128_SMIT_3D_Seg_state_dict.txt", seed=2)
    net = net_for("smit")
    report = load_pretrained_encoder(net, {wrapper: ckpt})
    assert report.complete and report.source_format == "smit"
    assert_landed(net, {k: v for k, v in ckpt.items() if k.startswith("transformer.")}, smit_target)


def test_smit96_original_release_bare_and_wrapped(tmp_path):
    bare = synthetic("smit96_original_repo_transformer_state_dict.txt", seed=4)
    bare["mask_token"] = torch.randn(1, 1, 48)
    for obj in (bare, {"epoch": 1, "state_dict": bare, "optimizer": {"state": {}, "param_groups": []}}):
        net = net_for("smit96")
        report = load_pretrained_encoder(net, obj)
        assert report.complete
        assert "mask_token" in report.ignored
        assert_landed(net, bare, smit_target)
    with pytest.raises(UserError, match="depths 2-2-4-2 .* depths 2-2-12-2; plan with -backbone smit96"):
        load_pretrained_encoder(net_for("smit"), bare)


def test_ibot_student_checkpoint_file(tmp_path):
    enc = {k: v for k, v in synthetic("smit128_SMIT_3D_Seg_state_dict.txt", seed=5).items()
           if k.startswith("transformer.")}
    student = {"module.backbone." + k: v for k, v in enc.items()}
    student["module.head.mlp.0.weight"] = torch.randn(8, 384)
    teacher = {"backbone." + k: torch.zeros_like(v) for k, v in enc.items()}
    path = tmp_path / "model_smit.pth"
    torch.save({"student": student, "teacher": teacher, "epoch": 3, "args": argparse.Namespace(lr=1e-4)}, path)
    net = net_for("smit")
    report = load_pretrained_encoder(net, path)
    assert report.complete
    assert "module.head.mlp.0.weight" in report.ignored
    assert_landed(net, enc, smit_target)  # the student's values, not the teacher's zeros


def test_own_nnunet_checkpoint_roundtrip(tmp_path):
    src = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny"))
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": src.state_dict(), "current_epoch": 5,
                "init_args": {"configuration": "3d_fullres"}, "trainer_name": "x"}, path)
    dst = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny"))
    report = load_pretrained_encoder(dst, path)
    assert report.complete and report.source_format == "nnunet_swin"
    for (k, a), b in zip(src.encoder.state_dict().items(), dst.encoder.state_dict().values()):
        assert torch.equal(a, b), k
    assert not torch.equal(src.decoder.out.conv.conv.weight, dst.decoder.out.conv.conv.weight)  # encoder only


def test_other_backbone_unknown_layout_corrupt_file(tmp_path):
    smit = synthetic("smit128_SMIT_3D_Seg_state_dict.txt")
    with pytest.raises(UserError, match="SMIT checkpoint .* configured as Swin UNETR"):
        load_pretrained_encoder(net_for("swin_unetr"), {"state_dict": smit})
    with pytest.raises(UserError, match="Swin UNETR checkpoint .* configured as SMIT"):
        load_pretrained_encoder(net_for("smit"), {"state_dict": synthetic("model_swinvit_expected_keys.txt")})
    with pytest.raises(UserError, match="unknown checkpoint layout"):
        load_pretrained_encoder(net_for("smit"), {"state_dict": {"fc.weight": torch.zeros(2, 2)}})
    with pytest.raises(UserError, match="unknown checkpoint layout"):
        load_pretrained_encoder(net_for("smit"), {"epoch": 3})
    good = tmp_path / "w.pt"
    torch.save({"state_dict": smit}, good)
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="incomplete torch.save archive"):
        load_pretrained_encoder(net_for("smit"), broken)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="is not a PyTorch checkpoint"):
        load_pretrained_encoder(net_for("smit"), garbage)
    with pytest.raises(UserError, match="does not exist"):
        load_pretrained_encoder(net_for("smit"), tmp_path / "nope.pt")


def test_partial_loading_only_when_allowed():
    ckpt = synthetic("model_swinvit_expected_keys.txt")
    del ckpt["module.layers4.0.blocks.1.mlp.fc2.weight"]
    with pytest.raises(UserError, match="1 missing"):
        load_pretrained_encoder(net_for("swin_unetr"), ckpt)
    net = net_for("swin_unetr")
    report = load_pretrained_encoder(net, ckpt, allow_partial=True)
    assert report.missing == ["layers.3.blocks.1.mlp.fc2.weight"]
    assert torch.equal(net.encoder.layers[3].blocks[1].mlp.fc1.weight, ckpt["module.layers4.0.blocks.1.mlp.fc1.weight"])


def test_multichannel_input_rule():
    """Kernel tiled over channels and scaled by 1/c: identical channels reproduce the single-channel embedding."""
    ckpt = synthetic("model_swinvit_expected_keys.txt")
    one, three = net_for("swin_unetr", 1).eval(), net_for("swin_unetr", 3).eval()
    load_pretrained_encoder(one, ckpt)
    report = load_pretrained_encoder(three, ckpt)
    assert "patch_embed.proj.weight" in report.adapted
    w = ckpt["module.patch_embed.proj.weight"]
    assert torch.allclose(three.encoder.patch_embed.proj.weight, w.repeat(1, 3, 1, 1, 1) / 3)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        a = one.encoder.patch_embed(x)
        b = three.encoder.patch_embed(x.repeat(1, 3, 1, 1, 1))
    assert (a - b).abs().max().item() < 1e-5


def test_relative_position_table_interpolated_for_another_window():
    ckpt = synthetic("model_swinvit_expected_keys.txt")
    net = net_for("swin_unetr", window_size=[5, 5, 5])
    report = load_pretrained_encoder(net, ckpt)
    tables = [k for k in report.adapted if k.endswith("relative_position_bias_table")]
    assert len(tables) == 8 and "window 7 to 5" in report.adapted[tables[0]]
    new = net.encoder.layers[0].blocks[0].attn.relative_position_bias_table
    old = ckpt["module.layers1.0.blocks.0.attn.relative_position_bias_table"]
    assert new.shape == (9 ** 3, 3)
    # offset (0, 0, 0) sits at the centre of both grids and keeps its value; so do the corners (+-extreme offsets)
    assert torch.allclose(new[(9 ** 3) // 2], old[(13 ** 3) // 2], atol=1e-6)
    assert torch.allclose(new[0], old[0], atol=1e-6) and torch.allclose(new[-1], old[-1], atol=1e-6)


def test_inspect_names_format_and_fitting_preset(tmp_path, capsys):
    cases = [("model_swinvit_expected_keys.txt", {"state_dict": None}, "nvidia_swinvit", "swin_unetr"),
             ("smit128_SMIT_3D_Seg_state_dict.txt", {"state_dict": None}, "smit", "smit"),
             ("smit96_original_repo_transformer_state_dict.txt", None, "smit", "smit96")]
    for name, wrapper, fmt, preset in cases:
        sd = synthetic(name)
        obj = sd if wrapper is None else {"state_dict": sd}
        path = tmp_path / f"{preset}.pt"
        torch.save(obj, path)
        ins = inspect_checkpoint(path)
        # the spine variant of Swin UNETR fits the NVIDIA weights too (its own modules start as identity)
        variants = {"swin_unetr": ["swin_unetr_msf"]}.get(preset, [])
        assert ins.source_format == fmt and ins.fits == [preset, *variants] and ins.best_preset == preset
        assert ins.report.complete
        assert cli_main.main(["weights", "inspect", str(path)]) == 0
        out = capsys.readouterr().out
        assert f"format:     {fmt}" in out and f"fits presets: {preset}" in out
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 10)
    assert cli_main.main(["weights", "inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err
