"""Image files: intact or not, and read through nnU-Net's own reader without its noise.

SimpleITK (nnU-Net's default reader) fills a truncated ``.nii.gz`` with zeros and reads NaN as 0, both without a
word; and nnU-Net's reader lookup prints a traceback per reader it tries on a file none can open. So a NIfTI file is
read here in full with nibabel first, and the reader lookup and reads run with nnU-Net's printing captured: a bad
file ends as one line that names it.
"""
from __future__ import annotations

import contextlib
import io
import re
import zlib
from pathlib import Path

import numpy as np

from nnunet_swin.errors import UserError

NIFTI_ENDINGS = (".nii.gz", ".nii")


def nifti_file_problem(path: str | Path) -> str | None:
    """For a ``.nii.gz`` / ``.nii``: why it is broken (not a NIfTI file, truncated) or holds NaN/Inf voxels (the text
    then begins with ``has``); None when intact or not a NIfTI file name (the reader decides)."""
    import nibabel

    path = Path(path)
    if not path.name.endswith(NIFTI_ENDINGS):
        return None
    image = None
    try:
        image = nibabel.load(path)
        data = np.asanyarray(image.dataobj.get_unscaled() if hasattr(image.dataobj, "get_unscaled")
                             else image.dataobj)
    except EOFError:
        return "truncated (the compressed stream ends early); copy or download the file again"
    except nibabel.filebasedimages.ImageFileError:  # no header nibabel recognises
        return _unrecognised_file(path)
    except (zlib.error, OSError, ValueError) as e:
        detail = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        short = re.search(r"Expected (\d+) bytes, got (\d+) bytes", detail)  # nibabel's words for short voxel data
        if short:
            offset = int(image.header.get("vox_offset", 0)) if image is not None else 0
            return (f"truncated ({int(short[2]) + offset} of {int(short[1]) + offset} bytes the header announces); "
                    f"copy or download the file again")
        return f"corrupt or not a NIfTI image ({detail}); copy or download the file again"
    if data.dtype.kind == "f":
        n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        if n_bad:
            return (f"has {n_bad} NaN/Inf voxel(s) (nnU-Net's reader turns NaN into 0 without a word); replace them "
                    f"(e.g. by 0 or the background value) before planning")
    return None


def _unrecognised_file(path: Path) -> str | None:
    """Why nibabel found no NIfTI header: the gzip stream is broken or ends early, or the file is shorter than a
    header; None for a complete file that is simply not NIfTI (nnU-Net's reader then decides)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = stream.decompress(data)
        except zlib.error as e:
            return f"not a readable gzip/NIfTI file ({e}); copy or download it again"
        if not stream.eof:
            return "truncated (the compressed stream ends early); copy or download the file again"
    if len(data) < 348:
        return f"truncated ({len(data)} bytes, shorter than a NIfTI header); copy or download it again"
    return None


def header_dimension(path: str | Path) -> int | None:
    """Number of image axes from the file header (SimpleITK), None when SimpleITK cannot tell."""
    try:
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        return int(reader.GetDimension())
    except Exception:  # noqa: BLE001 - unreadable headers are reported by the reader itself
        return None


def reader_for(dataset: dict, example: str | Path) -> type:
    """nnU-Net's reader/writer class for a dataset (``dataset.json``'s ``overwrite_image_reader_writer`` or the file
    ending), tried on ``example``; its per-reader tracebacks are captured. A UserError names the file and says
    whether it is broken or its ending has no reader."""
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return determine_reader_writer_from_dataset_json(dataset, str(example), verbose=False)
    except Exception:  # noqa: BLE001 - nnU-Net raises a bare RuntimeError when no reader opens the file
        pass
    broken = nifti_file_problem(example)
    if broken and not broken.startswith("has "):
        raise UserError(f"{Path(example).name} is {broken}") from None
    raise UserError(f"no nnU-Net reader opens {Path(example).name} (file ending {dataset['file_ending']!r}): the file "
                    f"is corrupt or not an image of that format; replace it, or fix file_ending in dataset.json") \
        from None


def read_image(reader_writer: type, path: str | Path, seg: bool = False):
    """(array (C, Z, Y, X), spacing (Z, Y, X)) through nnU-Net's reader, or (None, problem text)."""
    try:  # one file at a time: nnU-Net's readers print only when several files disagree (no redirect: threads)
        arr, props = reader_writer().read_seg(str(path)) if seg else reader_writer().read_images([str(path)])
        return arr, tuple(float(s) for s in props["spacing"])
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file
        text = str(e).strip().splitlines()
        detail = text[-1] if text else type(e).__name__
        return None, f"cannot be read by {reader_writer.__name__} ({detail[:160]}); replace the file"
