"""`adi` (and `cka`) inputs that need no model are refused in one line before any model is loaded."""
import pytest
import torch

from nnunet_swin.cli.main import main as cli


def _error(capsys, command="adi") -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"nnunet-swin {command}: error: "), err
    return err[0]


@pytest.fixture
def base(tmp_path):
    # the model folder does not exist: every error below must come before it is looked at
    return ["adi", "-m", str(tmp_path / "no_model"), "-i", str(tmp_path / "images"), "-o", str(tmp_path / "out")]


def test_missing_evaluation_csv(base, tmp_path, capsys):
    assert cli([*base, "--evaluation", str(tmp_path / "metrics_per_case.csv")]) == 2
    assert "evaluation table" in _error(capsys) and not (tmp_path / "out").exists()


def test_unreadable_evaluation_csv(base, tmp_path, capsys):
    (tmp_path / "e.csv").write_bytes(b"")
    assert cli([*base, "--evaluation", str(tmp_path / "e.csv")]) == 2
    assert "is not a readable CSV" in _error(capsys)


def test_batch_size_zero(base, capsys):
    assert cli([*base, "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1, got 0" in _error(capsys)


def test_device_without_a_gpu(base, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli([*base, "--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in _error(capsys)
    assert cli([*base, "--device", "gpu0"]) == 2
    assert "is not a torch device" in _error(capsys)


def test_cka_device_without_a_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli(["cka", "-a", str(tmp_path / "a"), "-b", str(tmp_path / "b"), "-i", str(tmp_path), "-o",
                str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "no CUDA GPU is available" in _error(capsys, "cka")
