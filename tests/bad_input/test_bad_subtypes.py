"""`subtypes` argument errors name the argument at fault, and model errors name a command that exists."""
import pytest

from nnunet_swin.cli.main import main as cli


def _error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("nnunet-swin subtypes: error: "), err
    return err[0]


@pytest.mark.parametrize("argv, text", [
    (["--k", "1"], "--k must be at least 2"),
    (["--k-min", "1"], "--k-min must be at least 2"),
    (["--k-min", "5", "--k-max", "2"], "--k-min 5 is above --k-max 2"),
])
def test_k_errors_blame_k(tmp_path, capsys, argv, text):
    train = ["--train-images", str(tmp_path / "img"), "--train-labels", str(tmp_path / "lab")]
    assert cli(["subtypes", "-o", str(tmp_path / "out"), *train, *argv]) == 2
    line = _error(capsys)
    assert text in line and "too few" not in line and "features" not in line
    assert not (tmp_path / "out").exists()


def test_model_errors_name_the_real_command(tmp_path, capsys):
    test = ["--test-images", str(tmp_path / "img"), "--test-labels", str(tmp_path / "lab")]
    assert cli(["subtypes", "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nope.json"), *test]) == 2
    line = _error(capsys)
    assert "does not exist" in line and "subtypes fit" not in line and "--train-images" in line
    (tmp_path / "bad.json").write_text("{not json")
    assert cli(["subtypes", "-o", str(tmp_path / "out"), "--model", str(tmp_path / "bad.json"), *test]) == 2
    line = _error(capsys)
    assert "cannot read the subtype model" in line and "subtypes fit" not in line and "--train-images" in line
