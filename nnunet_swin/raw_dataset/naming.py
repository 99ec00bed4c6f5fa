"""nnU-Net's raw image naming, ``{case}_{XXXX}{file_ending}`` (XXXX = the 4-digit channel index): the one parser.

nnU-Net's own ``get_identifiers_from_splitted_dataset_folder`` cuts five characters off every name without looking
at them; here a name that does not follow the rule is reported, by name.
"""
from __future__ import annotations

import re
from pathlib import Path

from nnunet_swin.errors import UserError

_CHANNEL_NAME = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def split_image_name(name: str, file_ending: str) -> tuple[str, int] | None:
    """``("case", channel)`` for ``case_0001.nii.gz`` (``file_ending`` ".nii.gz"); None for a name without the ending
    or without the ``_XXXX`` channel suffix."""
    if not name.endswith(file_ending):
        return None
    m = _CHANNEL_NAME.match(name[: -len(file_ending)])
    return (m["case"], int(m["channel"])) if m else None


def case_id(name: str, file_ending: str, known: set[str] | frozenset[str] = frozenset()) -> str:
    """The case id a user's name refers to: the file ending dropped, and a ``_XXXX`` channel suffix dropped unless the
    name (without it) is already one of the ``known`` ids (a case may be called ``x_0001`` itself)."""
    name = name.strip()
    if name.endswith(file_ending):
        name = name[: -len(file_ending)]
    m = _CHANNEL_NAME.match(name)
    return m["case"] if m and name not in known else name


def list_cases(images_folder: str | Path, file_ending: str, num_channels: int | None = None) -> dict[str, list[Path]]:
    """Case id -> its channel files (0..C-1 in order), for a folder named the nnU-Net way.

    Raises UserError for a file that does not follow the naming, an empty folder, and a case whose channels are not
    ``0..C-1`` (C = ``num_channels`` when given, the case's own count otherwise)."""
    folder = Path(images_folder)
    if not folder.is_dir():
        raise UserError(f"image folder {folder} not found")
    cases: dict[str, dict[int, Path]] = {}
    for p in sorted(folder.iterdir()):
        if not p.name.endswith(file_ending):
            continue
        parsed = split_image_name(p.name, file_ending)
        if parsed is None:
            raise UserError(f"{p.name} does not follow nnU-Net's {{case}}_{{XXXX}}{file_ending} naming")
        cases.setdefault(parsed[0], {})[parsed[1]] = p
    if not cases:
        raise UserError(f"no *{file_ending} images in {folder}")
    out = {}
    for case, chans in cases.items():
        expected = len(chans) if num_channels is None else num_channels
        if sorted(chans) != list(range(expected)):
            wanted = "the model takes" if num_channels is not None else "expected"
            raise UserError(f"case {case} has channels {sorted(chans)} but {wanted} {expected} "
                            f"(_0000.._{expected - 1:04d}); give images of the right channel count")
        out[case] = [chans[c] for c in range(expected)]
    return out
