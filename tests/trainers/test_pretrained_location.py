"""Where the pretrained checkpoint is found: $nnUNet_swin_pretrained as a file or a per-backbone folder."""
import pytest

from nnunet_swin.errors import UserError
from nnunet_swin.networks.weights.location import PRETRAINED_ENV, resolve_pretrained_checkpoint


def test_constant_name():
    assert PRETRAINED_ENV == "nnUNet_swin_pretrained"


def test_unset_says_what_to_set(monkeypatch):
    monkeypatch.delenv(PRETRAINED_ENV, raising=False)
    with pytest.raises(UserError, match=r"nnUNet_swin_pretrained is not set.*smit\.pt or smit\.pth.*SwinScratchTrainer"):
        resolve_pretrained_checkpoint("smit")


def test_a_file_is_used_as_is(tmp_path, monkeypatch):
    ckpt = tmp_path / "anything.ckpt"
    ckpt.write_bytes(b"x")
    monkeypatch.setenv(PRETRAINED_ENV, str(ckpt))
    assert resolve_pretrained_checkpoint("swin_unetr") == ckpt


@pytest.mark.parametrize("name", ["smit.pth", "smit.pt"])
def test_a_folder_is_searched_by_backbone_name(tmp_path, monkeypatch, name):
    (tmp_path / name).write_bytes(b"x")
    (tmp_path / "swin_unetr.pt").write_bytes(b"x")
    monkeypatch.setenv(PRETRAINED_ENV, str(tmp_path))
    assert resolve_pretrained_checkpoint("smit") == tmp_path / name
    assert resolve_pretrained_checkpoint("swin_unetr") == tmp_path / "swin_unetr.pt"


def test_a_folder_without_the_backbone_lists_what_it_has(tmp_path, monkeypatch):
    (tmp_path / "swin_unetr.pt").write_bytes(b"x")
    monkeypatch.setenv(PRETRAINED_ENV, str(tmp_path))
    with pytest.raises(UserError, match=r"without smit\.pt or smit\.pth; it holds swin_unetr\.pt"):
        resolve_pretrained_checkpoint("smit")


def test_a_missing_path(tmp_path, monkeypatch):
    monkeypatch.setenv(PRETRAINED_ENV, str(tmp_path / "nope.pth"))
    with pytest.raises(UserError, match="does not exist"):
        resolve_pretrained_checkpoint("smit")


def test_an_explicit_value_comes_before_the_environment(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "smit.pth").write_bytes(b"x")
    (tmp_path / "b" / "smit.pt").write_bytes(b"x")
    monkeypatch.setenv(PRETRAINED_ENV, str(tmp_path / "a"))
    assert resolve_pretrained_checkpoint("smit", tmp_path / "b") == tmp_path / "b" / "smit.pt"
    assert resolve_pretrained_checkpoint("smit", "") == tmp_path / "a" / "smit.pth"  # empty: not given
    with pytest.raises(UserError, match=r"without swin_unetr\.pt or swin_unetr\.pth.*smit\.pt"):
        resolve_pretrained_checkpoint("swin_unetr", tmp_path / "b")
    import os
    assert os.environ[PRETRAINED_ENV] == str(tmp_path / "a")  # nothing was written to the environment
