"""`nnunet-swin <command> --help` imports neither torch nor nnU-Net's training code, for every command."""
import subprocess
import sys

from nnunet_swin.cli.main import COMMANDS

PROBE = """
import contextlib, io, sys
from nnunet_swin.cli.main import main
heavy = ("torch", "nnunetv2.training")
for argv in {commands!r}:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            main(argv)
        except SystemExit:
            pass
    assert "usage:" in out.getvalue(), (argv, out.getvalue()[:200])
    loaded = [m for m in heavy if m in sys.modules]
    if loaded:
        print(" ".join(argv), "imported", ", ".join(loaded))
        sys.exit(1)
"""


def test_help_of_every_command_imports_no_torch():
    commands = [["--help"]] + [[name, "--help"] for name in COMMANDS] + \
        [["weights", action, "--help"] for action in ("inspect", "list", "fetch")]
    proc = subprocess.run([sys.executable, "-c", PROBE.format(commands=commands)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
