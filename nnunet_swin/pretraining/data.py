"""Images in, random two-view crops out: discovery, nnU-Net reading and resampling, intensity scaling, the cache.

1. ``discover_images``: a folder of images (any file nnU-Net's readers open; ``.nii.gz``, ``.nii``, ``.nrrd``,
   ``.mha``, ``.tif``...) or an nnU-Net raw dataset id (``imagesTr`` and ``imagesTs``; labels are ignored; every
   channel file is a volume of its own).
2. ``preprocess_volume``: read with nnU-Net's reader for the file ending (arrays ``(C, Z, Y, X)``, spacing
   ``(z, y, x)`` mm), resample with nnU-Net's ``resample_data_or_seg_to_shape`` (order 3, separate-z order 0 for
   anisotropic images, as nnU-Net's preprocessing) to the target spacing, then scale the intensities
   (``IntensityScheme``): CT clipped to a HU window (SMIT: [-175, 250]) then mapped to [0, 1]; MRI clipped per image
   to [min, p-th percentile] (99th by default) then mapped to [0, 1].
3. ``build_cache``: every volume once into ``<output>/cache/NNNNN.npy`` (float16, opened later with ``mmap_mode``)
   plus ``index.json`` (sources, shapes, settings). The folder appears whole or not at all.
4. ``TwoViewCrops``: item ``k`` (a global sample index) -> two crops of side ``crop`` from one region of side
   ``region_scale * crop`` (SMIT: 96 from 128), their validity masks (False on padding) and the volume index. Each
   item is drawn from ``default_rng([seed, k])`` only, so workers, ranks and resumed runs draw the same crops.
   ``RankBatches`` shards the global indices per DDP rank (as ``DistributedSampler``) and starts at any iteration.

Bad input raises ``UserError`` (one line, what is wrong and how to fix it) before anything is written.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from nnunet_swin.errors import UserError
from nnunet_swin.io import atomic_folder, read_json, save_npy, write_json
from nnunet_swin.raw_dataset.folders import dataset_modality

MODALITIES = ("CT", "MR")
CACHE_VERSION = 1


@dataclass(frozen=True)
class IntensityScheme:
    """How raw intensities become the [0, 1] input the encoder sees (stored in the checkpoint metadata)."""
    modality: str                                  # "CT" or "MR"
    hu_window: tuple[float, float] = (-175.0, 250.0)   # CT: clip to this window, then (x - lo) / (hi - lo)
    mr_percentile: float = 99.0                    # MR: clip per image to [min, p-th percentile], then to [0, 1]

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise UserError(f"unknown modality {self.modality!r}; use --modality CT or --modality MR")
        if not self.hu_window[0] < self.hu_window[1]:
            raise UserError(f"--hu-window needs LOW < HIGH, got {list(self.hu_window)}")
        if not 50.0 <= self.mr_percentile <= 100.0:
            raise UserError(f"--mr-percentile must be between 50 and 100, got {self.mr_percentile}")

    def describe(self) -> dict:
        if self.modality == "CT":
            return {"modality": "CT", "scheme": "ct_hu_window", "hu_window": list(self.hu_window),
                    "output_range": [0.0, 1.0]}
        return {"modality": "MR", "scheme": "mr_percentile_clip", "lower": "min",
                "upper_percentile": self.mr_percentile, "output_range": [0.0, 1.0]}

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, dict]:
        """``image`` float array -> (float32 in [0, 1], the per-image values used)."""
        if self.modality == "CT":
            lo, hi = self.hu_window
        else:
            lo, hi = float(np.min(image)), float(np.percentile(image, self.mr_percentile))
            if hi <= lo:
                hi = lo + 1.0
        out = (np.clip(image, lo, hi) - lo) / (hi - lo)
        return out.astype(np.float32), {"low": float(lo), "high": float(hi)}


# ------------------------------------------------------------------------------------------------ discovery
def _ending(path: Path) -> str:
    name = path.name.lower()
    for e in (".nii.gz", ".seg.nrrd"):
        if name.endswith(e):
            return e
    return path.suffix.lower()


def _supported_endings() -> set[str]:
    from nnunetv2.imageio.reader_writer_registry import LIST_OF_IO_CLASSES
    return {e.lower() for rw in LIST_OF_IO_CLASSES for e in rw.supported_file_endings}


def discover_images(input_folder: str | None = None, dataset_id: str | None = None) -> tuple[list[Path], str | None]:
    """(image files, modality named by the dataset or None). ``UserError`` when there is nothing to read."""
    if (input_folder is None) == (dataset_id is None):
        raise UserError("give the images either as a folder (-i FOLDER) or as an nnU-Net raw dataset (-d ID)")
    modality = None
    if dataset_id is not None:
        from nnunetv2.paths import nnUNet_raw
        from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name
        raw = os.environ.get("nnUNet_raw") if not isinstance(nnUNet_raw, str) else nnUNet_raw
        if not raw:
            raise UserError("-d needs the environment variable nnUNet_raw (or pass the images folder with -i)")
        try:
            name = maybe_convert_to_dataset_name(dataset_id)
        except Exception as e:  # noqa: BLE001 - nnU-Net raises RuntimeError/ValueError with its own text
            raise UserError(f"no nnU-Net raw dataset {dataset_id!r} in nnUNet_raw={raw} "
                            f"({str(e).splitlines()[0][:100]})") from None
        root = Path(raw) / name
        ds_file = root / "dataset.json"
        if not ds_file.is_file():
            raise UserError(f"{root} has no dataset.json; is it an nnU-Net raw dataset?")
        ds = read_json(ds_file, "dataset.json")
        ending = ds.get("file_ending", ".nii.gz")
        modality = dataset_modality(ds)
        files = sorted(p for sub in ("imagesTr", "imagesTs") if (root / sub).is_dir()
                       for p in (root / sub).iterdir() if p.name.endswith(ending))
        where = f"{root}/imagesTr (and imagesTs)"
    else:
        root = Path(input_folder).expanduser()
        if not root.is_dir():
            raise UserError(f"input folder {root} does not exist or is not a folder")
        endings = _supported_endings()
        files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")
                       and _ending(p) in endings)
        where = str(root)
    if not files:
        raise UserError(f"no images found in {where}; expected files nnU-Net can read (e.g. .nii.gz, .nrrd, .mha)")
    return files, modality


# ---------------------------------------------------------------------------------------------- preprocessing
@dataclass
class VolumeProblem(Exception):
    """A volume that cannot be used, with the reason (the caller refuses or skips it)."""
    path: str
    reason: str


def read_image(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """nnU-Net's reader for the file ending: ``(C, Z, Y, X)`` float32 and spacing ``(z, y, x)`` in mm."""
    import contextlib
    import io

    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_file_ending
    noise = io.StringIO()     # nnU-Net prints a traceback per reader it tries, even with verbose=False
    try:
        with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
            rw = determine_reader_writer_from_file_ending(_ending(path), str(path), verbose=False)
            data, props = rw().read_images([str(path)])
    except Exception as e:  # noqa: BLE001 - any reader failure is an unreadable image
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VolumeProblem(str(path), f"unreadable, not an image nnU-Net's readers open ({msg[:120]})") from None
    return np.asarray(data, dtype=np.float32), tuple(float(s) for s in props["spacing"])


def _nonfinite_in_nifti(path: Path) -> int:
    """NaN/inf voxels stored in a NIfTI file. ITK's NIfTI reader (nnU-Net's SimpleITKIO) returns them as 0, which
    would silently read as 0 HU, so the file's own values are counted with nibabel."""
    if _ending(path) not in (".nii", ".nii.gz"):
        return 0
    try:
        import nibabel
        values = np.asarray(nibabel.load(str(path)).dataobj)
    except Exception:  # noqa: BLE001 - nnU-Net's reader already opened it; nothing more to learn here
        return 0
    if not np.issubdtype(values.dtype, np.floating):
        return 0
    return int(values.size - np.count_nonzero(np.isfinite(values)))


def preprocess_volume(path: Path, spacing: tuple[float, float, float], intensity: IntensityScheme,
                      min_side: int) -> tuple[np.ndarray, dict]:
    """One file -> ``(Z, Y, X)`` float32 in [0, 1] at ``spacing`` (z, y, x mm), and what was done.
    ``VolumeProblem`` for unreadable, 2D, multi-channel-in-one-file or too small (< ``min_side`` voxels) images."""
    from nnunetv2.preprocessing.resampling.default_resampling import (compute_new_shape,
                                                                      resample_data_or_seg_to_shape)
    data, src_spacing = read_image(path)
    if data.ndim != 4:
        raise VolumeProblem(str(path), f"unexpected array of {data.ndim} dimensions")
    if data.shape[0] != 1:
        raise VolumeProblem(str(path), f"{data.shape[0]} channels in one file (pretraining reads one channel "
                                       "per file)")
    if min(data.shape[1:]) <= 1 or len(src_spacing) != 3 or max(src_spacing) >= 999:
        raise VolumeProblem(str(path), f"2D image (shape {list(data.shape[1:])}); pretraining needs 3D volumes")
    bad = max(int(data.size - np.count_nonzero(np.isfinite(data))), _nonfinite_in_nifti(path))
    if bad:
        raise VolumeProblem(str(path), f"{bad} NaN or infinite voxel(s) ({100.0 * bad / data.size:.2g}% of "
                                       f"{int(data.size)}); fix or remove the file")
    new_shape = compute_new_shape(data.shape[1:], src_spacing, spacing)
    if min(new_shape) < min_side:
        raise VolumeProblem(str(path), f"too small: {[int(n) for n in new_shape]} voxels at "
                                       f"{[float(s) for s in spacing]} mm, smaller than one {int(min_side)}^3 mask "
                                       "block")
    if tuple(new_shape) != tuple(data.shape[1:]):
        data = resample_data_or_seg_to_shape(data, new_shape, src_spacing, spacing, is_seg=False, order=3,
                                             order_z=0, force_separate_z=None)
    image, values = intensity.apply(data[0])
    return image, {"source": str(path), "source_spacing": list(src_spacing), "shape": list(image.shape), **values}


def build_cache(files: list[Path], cache_dir: Path, spacing: tuple[float, float, float], intensity: IntensityScheme,
                min_side: int, skip_bad: bool = False, log=print, progress: bool = True) -> list[dict]:
    """Preprocess every file into ``cache_dir`` (or reuse a cache built with the same files and settings).

    Returns the entries (``file`` = the .npy, ``shape``, ``source``...). A bad volume raises ``UserError`` naming it,
    unless ``skip_bad`` (then it is skipped and said so). The folder is built aside and renamed when complete."""
    settings = {"version": CACHE_VERSION, "spacing": list(spacing), "intensity": intensity.describe(),
                "sources": [str(f) for f in files], "min_side": min_side}
    index_file = cache_dir / "index.json"
    if index_file.is_file():
        index = read_json(index_file, "cache index")
        if index.get("settings") == settings:
            return [{**e, "file": str(cache_dir / e["file"])} for e in index["entries"]]
        raise UserError(f"{cache_dir} holds a cache built from other images or settings; remove it or choose "
                        "another output folder")
    entries, skipped = [], []
    with atomic_folder(cache_dir) as tmp:
        iterator = files
        if progress:
            from tqdm import tqdm
            iterator = tqdm(files, desc="preprocessing", unit="image")
        for f in iterator:
            try:
                image, info = preprocess_volume(f, spacing, intensity, min_side)
            except VolumeProblem as p:
                if not skip_bad:
                    raise UserError(f"{p.path}: {p.reason}; nothing was written. Remove it from the input or pass "
                                    "--skip-bad to skip such images") from None
                skipped.append(p)
                log(f"skipped {p.path}: {p.reason}")
                continue
            name = f"{len(entries):05d}.npy"
            save_npy(tmp / name, image.astype(np.float16))
            entries.append({"file": name, **info})
        if not entries:
            raise UserError(f"none of the {len(files)} images can be used (all skipped: {skipped[0].reason}, ...); "
                            "nothing was written")
        write_json(tmp / "index.json", {"settings": settings, "entries": entries,
                                        "skipped": [{"source": p.path, "reason": p.reason} for p in skipped]})
    return [{**e, "file": str(cache_dir / e["file"])} for e in entries]


# ------------------------------------------------------------------------------------------------ crops
def _axis_windows(rng: np.random.Generator, size: int, crop: int, region: int) -> list[tuple[int, int, int]]:
    """For one axis: per view ``(src_start, src_stop, dst_start)`` of two views sharing one region of ``region``
    voxels (an axis shorter than the crop is taken whole, at one random offset inside the padded crop)."""
    if size <= crop:
        dst = int(rng.integers(0, crop - size + 1))
        return [(0, size, dst), (0, size, dst)]
    length = min(size, region)
    start = int(rng.integers(0, size - length + 1))
    views = []
    for _ in range(2):
        s = start + int(rng.integers(0, length - crop + 1))
        views.append((s, s + crop, 0))
    return views


class TwoViewCrops(Dataset):
    """Map-style dataset over global sample indices ``k = epoch * samples_per_epoch + i``.

    ``__getitem__(k)`` -> ``(views (2, 1, S, S, S) float32, valid (2, S, S, S) bool, volume index, k)`` in nnU-Net's
    (Z, Y, X) order. Volume ``perm_epoch[i % n]`` (a fresh permutation per epoch), crops from ``default_rng([seed,
    k])``; padding (volumes smaller than the crop) is 0 and invalid."""

    def __init__(self, entries: list[dict], crop: int, samples_per_epoch: int, seed: int = 0,
                 region_scale: float = 4 / 3) -> None:
        self.files = [e["file"] for e in entries]
        self.crop, self.samples_per_epoch, self.seed = int(crop), int(samples_per_epoch), int(seed)
        self.region = int(math.ceil(region_scale * crop))

    def __len__(self) -> int:  # one epoch's worth; indices beyond are valid too
        return self.samples_per_epoch

    def volume_of(self, k: int) -> int:
        epoch, i = divmod(int(k), self.samples_per_epoch)
        perm = np.random.default_rng([self.seed, epoch, 7]).permutation(len(self.files))
        return int(perm[i % len(self.files)])

    def __getitem__(self, k: int):
        v = self.volume_of(k)
        image = np.load(self.files[v], mmap_mode="r")
        rng = np.random.default_rng([self.seed, int(k)])
        s = self.crop
        views = np.zeros((2, 1, s, s, s), np.float32)
        valid = np.zeros((2, s, s, s), bool)
        axes = [_axis_windows(rng, size, s, self.region) for size in image.shape]
        for j in range(2):
            (z0, z1, dz), (y0, y1, dy), (x0, x1, dx) = (axes[0][j], axes[1][j], axes[2][j])
            block = np.asarray(image[z0:z1, y0:y1, x0:x1], dtype=np.float32)
            lz, ly, lx = block.shape
            views[j, 0, dz:dz + lz, dy:dy + ly, dx:dx + lx] = block
            valid[j, dz:dz + lz, dy:dy + ly, dx:dx + lx] = True
        return torch.from_numpy(views), torch.from_numpy(valid), v, int(k)


class RankBatches(Sampler):
    """Batches of global sample indices for one DDP rank: iteration ``it`` of ``epoch`` on rank ``r`` takes
    ``epoch * S + it * B * W + r * B + [0, B)`` (``S = iterations * B * W``), starting at ``start_iteration``."""

    def __init__(self, epoch: int, iterations: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 start_iteration: int = 0) -> None:
        self.epoch, self.iterations, self.batch = epoch, iterations, batch_size
        self.rank, self.world, self.start = rank, world_size, start_iteration

    def __len__(self) -> int:
        return self.iterations - self.start

    def __iter__(self):
        per_epoch = self.iterations * self.batch * self.world
        for it in range(self.start, self.iterations):
            base = self.epoch * per_epoch + it * self.batch * self.world + self.rank * self.batch
            yield list(range(base, base + self.batch))


def collate(items):
    views = torch.stack([i[0] for i in items], dim=1)   # (2, B, 1, S, S, S)
    valid = torch.stack([i[1] for i in items], dim=1)   # (2, B, S, S, S)
    return views, valid, torch.tensor([i[2] for i in items]), torch.tensor([i[3] for i in items])


__all__ = ["IntensityScheme", "discover_images", "preprocess_volume", "build_cache", "TwoViewCrops", "RankBatches",
           "collate", "VolumeProblem", "MODALITIES"]
