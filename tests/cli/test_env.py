"""`nnunet-swin env` in a fresh shell: the printed export lets nnU-Net's own trainer lookup find our trainers."""
import os
import subprocess
import sys
from pathlib import Path



def test_help_lists_every_command(run_cli):
    out = run_cli("nnunet-swin", "--help").stdout
    for cmd in ("plan_and_preprocess", "env", "make_demo_dataset", "demo", "evaluate", "compare", "adi", "cka",
                "subtypes", "weights"):
        assert cmd in out


def test_unknown_command_is_one_line(run_cli):
    proc = run_cli("nnunet-swin", "frobnicate", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown command" in proc.stderr


def test_export_line_lets_stock_lookup_find_our_trainer(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}
    out = subprocess.run(["bash", "-c", f'eval "$({Path(sys.executable).parent}/nnunet-swin env --no-check)" && '
                                        'echo "$nnUNet_extTrainer"'],
                         capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert out.endswith(os.path.join("nnunet_swin", "_nnunet_ext"))
    probe = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as f\n"
             "import nnunet_swin.trainers as t, pickle\n"
             "c = f('SwinACTTrainer')\n"
             "assert c is t.SwinACTTrainer, c\n"
             "pickle.dumps(c)\n"
             "print('found', c.__module__)\n")
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                           env={**env, "nnUNet_extTrainer": out})
    assert found.returncode == 0, found.stderr
    assert "found nnunet_swin.trainers" in found.stdout
    missing = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert missing.returncode != 0 and "Could not find requested nnunet trainer" in missing.stderr


def test_env_checks_pass(run_cli):
    proc = run_cli("nnunet-swin", "env", env={"nnUNet_extTrainer": ""})
    assert proc.stdout.splitlines()[0].startswith("export nnUNet_extTrainer=")
    assert all(line.startswith("#") for line in proc.stdout.splitlines()[1:])
    assert "[ok] trainer SwinACTTrainer" in proc.stdout and "[ok] network class" in proc.stdout
    assert "[FAIL] this shell" in proc.stdout          # informational, exit code stays 0
