"""How stock nnU-Net finds our classes, and a check that it really does (what `nnunet-swin env` prints).

- Trainers: nnU-Net searches its own folder, then the folders in ``nnUNet_extTrainer``; ours is
  ``nnunet_swin/_nnunet_ext`` (one shim module re-exporting ``nnunet_swin.trainers``).
- Network: ``architecture.network_class_name`` in the plans, resolved with ``pydoc.locate``.
- Pretrained weights: ``nnUNet_swin_pretrained`` (see ``nnunet_swin.networks.weights.location``).
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass

from nnunet_swin._nnunet_ext import ext_trainer_dir

EXT_TRAINER_VAR = "nnUNet_extTrainer"
NNUNET_VARS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer", "nnUNet_swin_pretrained",
               "nnUNet_n_proc_DA", "nnUNet_def_n_proc", "nnUNet_compile")


def ext_trainer_value(current: str | None = None) -> str:
    """``nnUNet_extTrainer`` with our folder added to whatever the user already has there."""
    ours = str(ext_trainer_dir())
    parts = [p for p in (current if current is not None else os.environ.get(EXT_TRAINER_VAR, "")).split(os.pathsep)
             if p.strip()]
    return os.pathsep.join(parts if ours in parts else parts + [ours])


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@contextlib.contextmanager
def _ext_trainer_set():
    old = os.environ.get(EXT_TRAINER_VAR)
    os.environ[EXT_TRAINER_VAR] = ext_trainer_value(old)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(EXT_TRAINER_VAR, None)
        else:
            os.environ[EXT_TRAINER_VAR] = old


def our_trainer_names() -> list[str]:
    import nnunet_swin.trainers as trainers

    return list(getattr(trainers, "__all__", []))


def check_trainer_lookup(name: str) -> Check:
    """Resolve ``name`` exactly as ``nnUNetv2_train -tr name`` / ``nnUNetv2_predict`` will, with our folder on
    ``nnUNet_extTrainer``, and require the identical (importable, picklable) class."""
    import pickle

    import nnunet_swin.trainers as trainers
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    with _ext_trainer_set(), contextlib.redirect_stdout(io.StringIO()):
        try:
            found = recursive_find_trainer_class_by_name(name)
        except (RuntimeError, AssertionError) as e:
            return Check(f"trainer {name}", False, f"nnU-Net cannot find it: {e}")
    original = getattr(trainers, name)
    if found is not original:
        return Check(f"trainer {name}", False, f"nnU-Net found {found.__module__}.{found.__qualname__}, a second copy "
                     f"of {original.__module__}.{name}; point {EXT_TRAINER_VAR} at {ext_trainer_dir()} only, "
                     f"not at the package folder")
    pickle.dumps(found)
    return Check(f"trainer {name}", True, f"-tr {name} -> {found.__module__}.{name}")


def check_network_class() -> Check:
    import pydoc

    from nnunet_swin.networks.presets import NETWORK_CLASS_NAME

    cls = pydoc.locate(NETWORK_CLASS_NAME)
    if cls is None:
        return Check("network class", False, f"pydoc.locate({NETWORK_CLASS_NAME!r}) found nothing; reinstall "
                     f"nnunet-swin in this environment (pip install nnunet-swin)")
    return Check("network class", True, f"{NETWORK_CLASS_NAME} resolves")


def check_nnunet_version() -> Check:
    from importlib.metadata import version

    import nnunetv2.paths

    v = version("nnunetv2")
    major_minor = tuple(int(p) for p in v.split(".")[:3] if p.isdigit())
    if not hasattr(nnunetv2.paths, EXT_TRAINER_VAR) or not ((2, 8, 1) <= major_minor < (2, 9)):
        return Check("nnunetv2 version", False, f"nnunetv2 {v} installed; nnunet-swin needs >=2.8.1,<2.9 "
                     f"(pip install 'nnunetv2>=2.8.1,<2.9')")
    return Check("nnunetv2 version", True, f"nnunetv2 {v}")


def check_shell_variable() -> Check:
    ours = str(ext_trainer_dir())
    current = [p for p in os.environ.get(EXT_TRAINER_VAR, "").split(os.pathsep) if p.strip()]
    if ours not in current:
        return Check("this shell", False, f"{EXT_TRAINER_VAR} does not contain {ours}; run the export line above "
                     f"(or: eval \"$(nnunet-swin env)\")")
    return Check("this shell", True, f"{EXT_TRAINER_VAR} contains {ours}")


def check_pretrained() -> list[Check]:
    """Where each backbone's pretrained encoder would be loaded from (informational unless the variable is set)."""
    try:
        from nnunet_swin.networks.weights.location import PRETRAINED_ENV, resolve_pretrained_checkpoint
    except ImportError as e:
        return [Check("pretrained weights", False, f"networks not importable: {e}")]
    from nnunet_swin.errors import UserError

    if not os.environ.get(PRETRAINED_ENV):
        return [Check("pretrained weights", True, f"{PRETRAINED_ENV} is not set: pretrained trainers (SwinBase/TA/ACT) "
                      f"will stop and ask for it; SwinScratchTrainer does not need it")]
    out = []
    for backbone in ("smit", "swin_unetr"):
        try:
            out.append(Check(f"pretrained {backbone}", True, str(resolve_pretrained_checkpoint(backbone))))
        except UserError as e:
            out.append(Check(f"pretrained {backbone}", False, str(e)))
    return out


def run_checks() -> list[Check]:
    checks = [check_nnunet_version(), check_network_class()]
    try:
        names = our_trainer_names()
    except Exception as e:  # a broken install must still produce a report
        checks.append(Check("trainers", False, f"nnunet_swin.trainers does not import: {e}"))
        names = []
    checks += [check_trainer_lookup(n) for n in names]
    checks += check_pretrained()
    checks.append(check_shell_variable())
    return checks
