"""The one device rule: CUDA when this machine has it, else the CPU; and a check that a device named by the user
exists here, with a one-line error that says which it has."""
from __future__ import annotations

from nnunet_swin.errors import UserError


def default_device() -> str:
    """``"cuda"`` when a CUDA GPU is available, else ``"cpu"`` (what every command uses when ``--device`` is not
    given)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None, option: str = "--device") -> str:
    """The device to run on: ``default_device()`` for ``None`` / ``"auto"``, else ``name`` once ``check_device`` has
    found it on this machine."""
    if name in (None, "auto"):
        return default_device()
    check_device(name, option)
    return name


def check_device(name: str, option: str = "--device") -> None:
    """A torch device this machine has (``cpu``, ``cuda``, ``cuda:N``, ``mps``), or a UserError saying which it has."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise UserError(f"{option} {name!r} is not a torch device ({str(e).splitlines()[0]}); use cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{option} {name}: no CUDA GPU is available on this machine (torch.cuda.is_available() "
                            f"is False); use {option} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                            f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError(f"{option} mps: Apple's MPS backend is not available here; use {option} cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"{option} {name}: unsupported device type {device.type!r}; use cpu or cuda")
