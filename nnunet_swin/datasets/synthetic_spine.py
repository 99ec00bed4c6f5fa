"""A synthetic multi-class spine dataset (the spine paper's task), CT-like or MRI-like, in nnU-Net raw format.

Each case is a chain of 5-7 vertebrae along z with a curvature (a lordosis-like bend in the sagittal plane that
varies per case): vertebral bodies (elliptic cylinders with a cortical rim), posterior arches around the spinal
canal, intervertebral discs between the bodies, and the canal running the whole length, inside soft tissue, fat and
air. Labels: ``vertebra_1`` .. ``vertebra_7`` = 1..7 (top to bottom; a case with fewer visible levels lacks the
higher labels), ``disc`` = 8, ``spinal_canal`` = 9. Contrast:

- ``CT``: Hounsfield-like values (cortical bone ~1100, cancellous ~250, disc ~90, CSF ~10, soft tissue ~45,
  fat -100, air -1000), 0.6-0.9 mm in-plane, 2-3 mm slices;
- ``MR``: T2-like (disc and CSF bright, marrow intermediate, cortical bone dark), 0.5-0.8 mm in-plane, 3-4 mm slices.

Sizes, curvature, the number of visible levels and the spacing vary per case; everything is drawn from one seed
(deterministic). Arrays are generated in (X, Y, Z) and written with SimpleITK.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from nnunet_swin.errors import UserError
from nnunet_swin.io import atomic_folder, write_json

MAX_LEVELS = 7
LABELS = {"background": 0, **{f"vertebra_{i}": i for i in range(1, MAX_LEVELS + 1)}, "disc": MAX_LEVELS + 1,
          "spinal_canal": MAX_LEVELS + 2}
CONTRAST = {  # tissue -> (CT value, MR value)
    "air": (-1000.0, 5.0), "fat": (-100.0, 420.0), "soft": (45.0, 160.0), "cortical": (1100.0, 40.0),
    "cancellous": (250.0, 230.0), "disc": (90.0, 520.0), "csf": (10.0, 700.0)}


@dataclass(frozen=True)
class SpineSpec:
    num_train: int = 12
    num_test: int = 4
    modality: str = "CT"          # "CT" or "MR"
    levels: tuple[int, int] = (5, 7)
    fov_mm: float = 80.0          # in-plane field of view (square)
    seed: int = 0


def synthesize_spine(rng: np.random.Generator, spec: SpineSpec) -> dict:
    """One case: image and label in (X, Y, Z), spacing (sx, sy, sz) mm, and the number of visible levels."""
    ct = spec.modality == "CT"
    sp_xy = float(rng.uniform(0.6, 0.9) if ct else rng.uniform(0.5, 0.8))
    sp_z = float(rng.uniform(2.0, 3.0) if ct else rng.uniform(3.0, 4.0))
    levels = int(rng.integers(spec.levels[0], spec.levels[1] + 1))
    body_h, disc_h = rng.uniform(16.0, 22.0), rng.uniform(5.0, 8.0)
    length = levels * body_h + (levels - 1) * disc_h + 2 * rng.uniform(6.0, 12.0)
    nx, nz = int(round(spec.fov_mm / sp_xy)), int(round(length / sp_z))
    x = (np.arange(nx) + 0.5) * sp_xy - spec.fov_mm / 2
    z = (np.arange(nz) + 0.5) * sp_z - nz * sp_z / 2
    X, Y, Z = np.meshgrid(x, x, z, indexing="ij")
    bend = rng.uniform(4.0, 12.0) * np.sin(np.pi * (Z / length) * rng.uniform(0.8, 1.2) + rng.uniform(-0.4, 0.4))
    Yc = Y - bend                                                   # sagittal (anterior-posterior) curvature
    tissue = np.full(X.shape, "air", dtype=object)
    r_body = np.sqrt((X / (spec.fov_mm * 0.45)) ** 2 + (Y / (spec.fov_mm * 0.40)) ** 2)
    tissue[r_body < 1.0] = "fat"
    tissue[r_body < 0.88] = "soft"
    label = np.zeros(X.shape, np.uint8)
    a, b = rng.uniform(14.0, 20.0), rng.uniform(11.0, 15.0)         # vertebral body semi-axes (x, y)
    canal_r, canal_y = rng.uniform(5.0, 7.5), b + rng.uniform(6.0, 9.0)
    z0 = -(levels * body_h + (levels - 1) * disc_h) / 2
    for level in range(levels):
        top = z0 + level * (body_h + disc_h)
        in_z = (Z >= top) & (Z < top + body_h)
        ell = np.sqrt((X / a) ** 2 + (Yc / b) ** 2)
        body = in_z & (ell < 1.0)
        arch = in_z & (np.sqrt(X ** 2 + (Yc - canal_y) ** 2) < canal_r + rng.uniform(3.0, 5.0)) & (Yc > b * 0.6)
        vertebra = body | arch
        label[vertebra] = level + 1
        tissue[vertebra] = "cancellous"
        tissue[vertebra & ~ndimage.binary_erosion(vertebra, iterations=2)] = "cortical"
        if level < levels - 1:
            disc = (Z >= top + body_h) & (Z < top + body_h + disc_h) & (ell < 0.95)
            label[disc] = MAX_LEVELS + 1
            tissue[disc] = "disc"
    canal = np.sqrt(X ** 2 + (Yc - canal_y) ** 2) < canal_r
    label[canal] = MAX_LEVELS + 2
    tissue[canal] = "csf"
    column = 0 if ct else 1
    img = np.zeros(X.shape, np.float32)
    for name, values in CONTRAST.items():
        img[tissue == name] = values[column]
    img = ndimage.gaussian_filter(img, (0.5 / sp_xy, 0.5 / sp_xy, 0.4))
    noise = 25.0 if ct else 20.0
    img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    if not ct:
        img = np.abs(img)
    return {"image": img.astype(np.float32), "label": label, "spacing": (sp_xy, sp_xy, sp_z), "levels": levels}


def make_spine_dataset(nnunet_raw: str | os.PathLike, dataset_id: int = 502, name: str = "SyntheticSpine",
                       spec: SpineSpec = SpineSpec(), overwrite: bool = False, progress: bool = True) -> Path:
    """Write ``nnunet_raw/DatasetNNN_Name`` (imagesTr/labelsTr/imagesTs/labelsTs, dataset.json); returns its path."""
    from nnunet_swin.datasets.synthetic import _write_nifti

    if spec.modality not in ("CT", "MR"):
        raise UserError(f"spine modality must be CT or MR, got {spec.modality!r}")
    if not 1 <= spec.levels[0] <= spec.levels[1] <= MAX_LEVELS:
        raise UserError(f"visible levels must be a range within 1..{MAX_LEVELS}, got {list(spec.levels)}")
    if spec.num_train < 2 or spec.num_test < 0:
        raise UserError(f"need at least 2 training cases, got {spec.num_train}")
    raw = Path(nnunet_raw)
    target = raw / f"Dataset{dataset_id:03d}_{name}"
    existing = list(raw.glob(f"Dataset{dataset_id:03d}_*")) if raw.is_dir() else []
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; pick another id with -d or pass --overwrite")
    cases = range(spec.num_train + spec.num_test)
    if progress:
        from tqdm import tqdm
        cases = tqdm(cases, desc="synthetic spine cases", unit="case")
    with atomic_folder(target) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (tmp / sub).mkdir()
        for i in cases:
            split = "Tr" if i < spec.num_train else "Ts"
            case = synthesize_spine(np.random.default_rng([spec.seed, i]), spec)
            case_id = f"{name.lower()}_{i:03d}"
            _write_nifti(case["image"], case["spacing"], tmp / f"images{split}" / f"{case_id}_0000.nii.gz")
            _write_nifti(case["label"], case["spacing"], tmp / f"labels{split}" / f"{case_id}.nii.gz")
        write_json(tmp / "dataset.json", {
            "channel_names": {"0": spec.modality}, "labels": LABELS, "numTraining": spec.num_train,
            "file_ending": ".nii.gz", "name": name,
            "description": f"nnunet-swin synthetic {spec.modality}-like spine: 5-7 vertebrae, discs, spinal canal",
            "nnunet_swin_synthetic_spec": asdict(spec)})
        for p in existing:
            shutil.rmtree(p)
    return target
