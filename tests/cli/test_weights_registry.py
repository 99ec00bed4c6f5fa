"""`nnunet-swin weights list` and `weights fetch`: a local file:// source, the checksum, offline and licence refusals."""
import dataclasses
import hashlib

from nnunet_swin.cli.main import main
from nnunet_swin.networks.weights import registry


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnunet-swin weights: error: "), err
    return err[0]


def test_list_names_every_checkpoint_with_licence_data_and_preset(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for entry in registry.REGISTRY.values():
        assert entry.name in out and entry.url in out and f"preset {entry.preset}" in out
    assert "CC BY-NC-ND 4.0" in out and "847.3 M (README says 818 M)" in out


def test_fetch_from_a_file_source_checks_the_md5(tmp_path, monkeypatch, capsys):
    src = tmp_path / "VoCo_B_SSL_head.pt"
    src.write_bytes(b"stand-in bytes")
    entry = dataclasses.replace(registry.REGISTRY["voco_b"], url=src.as_uri(),
                                md5=hashlib.md5(b"stand-in bytes").hexdigest())
    monkeypatch.setitem(registry.REGISTRY, "voco_b", entry)
    assert main(["weights", "fetch", "voco_b", "-o", str(tmp_path / "w")]) == 0
    assert (tmp_path / "w" / "swin_unetr_v2.pt").read_bytes() == b"stand-in bytes"
    assert "nnUNet_swin_pretrained=" in capsys.readouterr().out
    monkeypatch.setitem(registry.REGISTRY, "voco_b", dataclasses.replace(entry, md5="0" * 32))
    assert main(["weights", "fetch", "voco_b", "-o", str(tmp_path / "x")]) == 2
    assert "the published one is 0000" in _one_error_line(capsys)
    assert not (tmp_path / "x" / "swin_unetr_v2.pt").exists()  # nothing half-written


def test_offline_and_licence_restricted_stop_with_one_line(tmp_path, capsys):
    assert main(["weights", "fetch", "voco_l", "-o", str(tmp_path), "--url", "http://127.0.0.1:9/none.pt"]) == 2
    line = _one_error_line(capsys)
    assert "cannot download voco_l" in line and "offline" in line and "swin_unetr_v2_96.pt" in line
    assert main(["weights", "fetch", "brainsegfounder_ukb", "-o", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "requires your own download" in line and "huggingface.co/smilelab/BrainSegFounder" in line
    assert list(tmp_path.iterdir()) == []
