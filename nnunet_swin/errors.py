"""The one exception type users see, and how it is shown: one line, in our commands and under stock nnU-Net's.

Ground floor: every part of the package raises ``UserError``; ``install_excepthook`` (called by the trainer shim
that stock ``nnUNetv2_train`` / ``nnUNetv2_predict`` import) turns an uncaught one into ``nnunet-swin: <message>``.
"""
from __future__ import annotations

import sys


class UserError(Exception):
    """Bad input or configuration. The CLI prints the message on one line and exits with status 2."""


_TEXT_PREFIX = "nnunet_swin.errors.UserError: "


def user_error_message(exc: BaseException | None) -> str | None:
    """The message of the UserError behind ``exc`` (itself, or up its ``raise ... from`` chain; or, for an error a
    ``torch.multiprocessing`` worker reported as text, its last line), else None."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, UserError):
            return str(e)
        e = e.__cause__
    if exc is not None and type(exc).__name__ == "ProcessRaisedException":  # DDP rank's error, passed on as text
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        if lines and lines[-1].startswith(_TEXT_PREFIX):
            return lines[-1][len(_TEXT_PREFIX):]
    return None


def install_excepthook() -> None:
    """Make an uncaught UserError end as one line ``nnunet-swin: <message>`` (exit status 1) in any process that
    imports our trainer shim: stock ``nnUNetv2_train`` / ``nnUNetv2_predict`` and their DDP ranks. Every other
    exception goes to the hook that was there before, unchanged. Installing twice is harmless."""
    previous = sys.excepthook
    if getattr(previous, "_nnunet_swin", False):
        return

    def hook(exc_type, exc, tb):
        message = user_error_message(exc)
        if message is None:
            return previous(exc_type, exc, tb)
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - a closed stdout must not hide the message
            pass
        sys.stderr.write("\n" + f"nnunet-swin: {message}".replace("\n", " ") + "\n")  # on a fresh line
        sys.stderr.flush()

    hook._nnunet_swin = True
    hook.previous = previous
    sys.excepthook = hook
