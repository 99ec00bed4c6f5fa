"""`weights inspect` on files that are not checkpoints, and on folders as nnUNet_swin_pretrained names them."""
import pathlib
import pickle

import pytest
import torch

from nnunet_swin.cli.main import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnunet-swin weights: error: "), err
    return err[0]


def test_empty_file(tmp_path, capsys):
    (tmp_path / "smit.pth").write_bytes(b"")
    assert "is empty (0 bytes)" in _error(capsys, ["weights", "inspect", str(tmp_path / "smit.pth")])


def test_random_bytes_and_plain_pickle_are_named_for_what_they_are(tmp_path, capsys):
    (tmp_path / "r.pth").write_bytes(bytes(range(256)) * 4)
    line = _error(capsys, ["weights", "inspect", str(tmp_path / "r.pth")])
    assert "is not a PyTorch checkpoint" in line and "weights_only" not in line and "download" not in line
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"epoch": 3, "weights": [1.0, 2.0]}))
    line = _error(capsys, ["weights", "inspect", str(tmp_path / "p.pkl")])
    assert "is a Python pickle but not a PyTorch checkpoint" in line and "weights_only=False will" not in line


def test_truncated_archive(tmp_path, capsys):
    torch.save({"w": torch.zeros(64)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert "incomplete torch.save archive" in _error(capsys, ["weights", "inspect", str(tmp_path / "cut.pt")])


def test_arbitrary_objects_advice_works_from_the_shell(tmp_path, capsys):
    torch.save({"w": torch.zeros(2), "path": pathlib.PurePosixPath("/x")}, tmp_path / "o.pt")
    line = _error(capsys, ["weights", "inspect", str(tmp_path / "o.pt")])
    assert "pathlib.PurePosixPath" in line and "pass the dict" not in line and "re-save only its tensors" in line


def test_folder_is_resolved_like_the_trainers(tmp_path, capsys):
    from nnunet_swin.workflows.standin_checkpoint import write_standin_checkpoint
    from nnunet_swin.networks.presets import get_preset

    write_standin_checkpoint(get_preset("smit_tiny"), tmp_path / "smit_tiny.pth")
    assert main(["weights", "inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smit_tiny.pth" in out and "format:" in out
    assert main(["weights", "inspect", str(tmp_path), "--backbone", "smit_tiny"]) == 0
    line = _error(capsys, ["weights", "inspect", str(tmp_path), "--backbone", "swin_unetr"])
    assert "without swin_unetr.pt or swin_unetr.pth" in line and "smit_tiny.pth" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no .pt/.pth file" in _error(capsys, ["weights", "inspect", str(empty)])
