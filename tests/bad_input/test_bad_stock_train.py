"""Our UserErrors under stock `nnUNetv2_train` end as one line `nnunet-swin: ...`; nnU-Net's own errors do not change."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from nnunet_swin._nnunet_ext import ext_trainer_dir
from nnunet_swin.errors import install_excepthook, user_error_message
from nnunet_swin.errors import UserError

HERE = Path(__file__).resolve().parent


def _trainer_plans():
    spec = importlib.util.spec_from_file_location("trainer_plans", HERE.parent / "trainers" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_plans(), module.DATASET_JSON


@pytest.fixture
def stock_env(tmp_path):
    plans, dataset_json = _trainer_plans()
    pre = tmp_path / "pre" / plans["dataset_name"]
    (pre / "nnUNetSMITPlans_3d_fullres").mkdir(parents=True)
    (pre / "nnUNetSMITPlans_3d_fullres" / "case_000.b2nd").write_bytes(b"")   # lets nnU-Net pick its dataset class
    (pre / "nnUNetSMITPlans.json").write_text(json.dumps(plans))
    (pre / "dataset.json").write_text(json.dumps(dataset_json))
    for name in ("raw", "res"):
        (tmp_path / name).mkdir()
    return {"nnUNet_raw": str(tmp_path / "raw"), "nnUNet_preprocessed": str(tmp_path / "pre"),
            "nnUNet_results": str(tmp_path / "res"), "nnUNet_extTrainer": str(ext_trainer_dir()),
            "nnUNet_n_proc_DA": "0", "nnUNet_compile": "f", "nnUNet_swin_pretrained": ""}


def _train(run_cli, env, plans="nnUNetSMITPlans"):
    return run_cli("nnUNetv2_train", "987", "3d_fullres", "0", "-tr", "SwinACTTrainer", "-p", plans,
                   "-device", "cpu", env=env, check=False, timeout=300)


@pytest.mark.slow
def test_unset_checkpoint_is_one_line(stock_env, run_cli):
    proc = _train(run_cli, stock_env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("nnunet-swin: no CT-pretrained checkpoint") and "nnUNet_swin_pretrained" in lines[-1]


@pytest.mark.slow
def test_empty_checkpoint_is_one_line(stock_env, tmp_path, run_cli):
    (tmp_path / "smit_tiny.pth").write_bytes(b"")
    proc = _train(run_cli, {**stock_env, "nnUNet_swin_pretrained": str(tmp_path)})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "IndexError" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("nnunet-swin: checkpoint") and "is empty (0 bytes)" in proc.stderr


@pytest.mark.slow
def test_nnunet_errors_keep_their_traceback(stock_env, run_cli):
    proc = _train(run_cli, stock_env, plans="nnUNetNoSuchPlans")       # nnU-Net's FileNotFoundError, after our shim loaded
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "nnunet-swin:" not in proc.stderr
    assert "nnUNetNoSuchPlans.json" in proc.stderr


def test_hook_follows_the_cause_chain_and_defers_otherwise(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *a: seen.append(a[0]))
    install_excepthook()
    install_excepthook()                       # twice: still one hook over the original
    assert sys.excepthook.previous is not None and not getattr(sys.excepthook.previous, "_nnunet_swin", False)
    try:
        try:
            raise UserError("inner message")
        except UserError as e:
            raise RuntimeError("wrapper") from e
    except RuntimeError as wrapped:
        sys.excepthook(type(wrapped), wrapped, wrapped.__traceback__)
    assert capsys.readouterr().err.strip() == "nnunet-swin: inner message"
    error = ValueError("not ours")
    sys.excepthook(ValueError, error, None)
    assert seen == [ValueError]


def test_a_ddp_ranks_user_error_is_recognised():
    class ProcessRaisedException(Exception):
        pass

    text = ("\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n  File "
            "\"x.py\", line 1\nnnunet_swin.errors.UserError: checkpoint 'a.pth' is empty (0 bytes); fetch it\n")
    assert user_error_message(ProcessRaisedException(text)) == "checkpoint 'a.pth' is empty (0 bytes); fetch it"
    assert user_error_message(ProcessRaisedException("Traceback ...\nValueError: x")) is None
