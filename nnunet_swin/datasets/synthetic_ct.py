"""A CT-like counterpart of the synthetic pelvic MRI (``synthetic.py``): the same anatomy classes in Hounsfield units.

Same body outline, subcutaneous fat, pelvic muscles, bladder, rectum (wall + lumen) running along z and one tumour
on the rectal wall (``bright`` = enhancing, ``dark`` = hypo-attenuating), drawn with the MRI generator's shape
helpers (``_draw_z_extent``, ``_smooth_noise``) and its ``SyntheticSpec``; but on a CT grid (in-plane 0.7-0.9 mm,
slices 1-2.5 mm), with CT contrast (gas in the lumen, fluid bladder, fat darker than muscle), CT noise (Gaussian,
about 12 HU) and a slight in-plane blur. Every case also has its **tissue map** (``TISSUES``), the ground truth of
the pretraining experiment's clustering measure.

Arrays are (X, Y, Z) like ``synthetic.py`` (SimpleITK writes them as (Z, Y, X)). Deterministic from the seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from nnunet_swin.datasets.synthetic import SyntheticSpec, _draw_z_extent, _smooth_noise, _write_nifti, tumour_on_wall
from nnunet_swin.errors import UserError
from nnunet_swin.io import atomic_folder, write_json

TISSUES = ("air", "fat", "soft_tissue", "muscle", "bladder", "rectal_wall", "lumen", "tumour")
HU = {"air": -1000.0, "fat": -100.0, "soft_tissue": 40.0, "muscle": 55.0, "bladder": 8.0, "rectal_wall": 45.0,
      "lumen": -850.0}


@dataclass(frozen=True)
class CTSpec:
    """The anatomy draws of ``SyntheticSpec`` (extents, subtype share, seed) plus the CT acquisition."""
    anatomy: SyntheticSpec = SyntheticSpec()
    inplane_spacing_mm: tuple[float, float] = (0.7, 0.9)
    slice_thickness_mm: tuple[float, float] = (1.0, 2.5)
    noise_hu: float = 12.0


def synthesize_ct_case(rng: np.random.Generator, spec: CTSpec, subtype: str) -> dict:
    """One case: ``image`` (HU, float32), ``tissue`` (uint8 index into ``TISSUES``), ``label`` (tumour, uint8), all
    (X, Y, Z), and ``spacing`` (sx, sy, sz) mm."""
    a = spec.anatomy
    sp_xy = float(rng.uniform(*spec.inplane_spacing_mm))
    sp_z = float(rng.uniform(*spec.slice_thickness_mm))
    z_mm = _draw_z_extent(rng, a)
    nx = int(round(a.fov_mm / sp_xy))
    nz = max(4, int(round(z_mm / sp_z)))
    x = (np.arange(nx) + 0.5) * sp_xy - a.fov_mm / 2
    z = (np.arange(nz) + 0.5) * sp_z - nz * sp_z / 2
    X, Y, Z = np.meshgrid(x, x, z, indexing="ij")
    t = {name: i for i, name in enumerate(TISSUES)}

    body_a, body_b = a.fov_mm * rng.uniform(0.40, 0.46), a.fov_mm * rng.uniform(0.32, 0.40)
    r_body = np.sqrt((X / body_a) ** 2 + (Y / body_b) ** 2)
    tissue = np.full(X.shape, t["air"], np.uint8)
    tissue[r_body < 1.0] = t["fat"]
    tissue[r_body < 0.86] = t["soft_tissue"]
    for sx in (-1, 1):
        mx, my = sx * body_a * 0.5, body_b * rng.uniform(-0.1, 0.1)
        tissue[((X - mx) / (body_a * 0.22)) ** 2 + ((Y - my) / (body_b * 0.35)) ** 2 < 1] = t["muscle"]
    by = -body_b * 0.45
    tissue[((X / (body_a * 0.3)) ** 2 + ((Y - by) / (body_b * 0.25)) ** 2 + (Z / 60.0) ** 2) < 1] = t["bladder"]
    cx = rng.uniform(-3, 3) + 3.0 * np.sin(Z / 25.0)
    cy = body_b * 0.25 + rng.uniform(-3, 3)
    r_rect = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    wall_r = rng.uniform(9.0, 13.0)
    tissue[r_rect < wall_r] = t["rectal_wall"]
    tissue[r_rect < wall_r - 3.0] = t["lumen"]

    label, signed, rough = tumour_on_wall(rng, (X, Y, Z), z, cx, cy, wall_r, nz, sp_xy, sp_z)
    tissue[label > 0] = t["tumour"]

    lut = np.array([HU.get(name, 0.0) for name in TISSUES], np.float32)
    img = lut[tissue]
    tumour_hu = rng.uniform(85.0, 110.0) if subtype == "bright" else rng.uniform(15.0, 28.0)
    edge_mm = 0.5 if subtype == "bright" else 2.5
    weight = 1.0 / (1.0 + np.exp(np.clip(signed / edge_mm, -50, 50)))
    img = img * (1 - weight) + tumour_hu * weight * (1 + 0.05 * rough)
    img += 6.0 * _smooth_noise(rng, X.shape, (6.0 / sp_xy, 6.0 / sp_xy, 6.0 / sp_z)) * (tissue != t["air"])
    img = ndimage.gaussian_filter(img, (0.4 / sp_xy, 0.4 / sp_xy, 0.2))
    img = img + rng.normal(0.0, spec.noise_hu, img.shape)
    return {"image": np.clip(img, -1024, 3071).astype(np.float32), "tissue": tissue, "label": label,
            "spacing": (sp_xy, sp_xy, sp_z)}


def make_ct_corpus(folder: str | os.PathLike, num_cases: int = 8, spec: CTSpec = CTSpec(), overwrite: bool = False,
                   ) -> Path:
    """Write ``folder/images/ct_NNN.nii.gz`` (HU), ``folder/tissues/ct_NNN.nii.gz`` (tissue index) and
    ``folder/corpus.json`` (tissue names, subtypes). The folder appears whole or not at all."""
    folder = Path(folder)
    if num_cases < 1:
        raise UserError(f"need at least one case, got {num_cases}")
    if folder.exists():
        if not overwrite:
            raise UserError(f"{folder} already exists; choose another folder or pass overwrite=True")
        import shutil
        shutil.rmtree(folder)
    rng = np.random.default_rng(spec.anatomy.seed)
    n_bright = int(round(spec.anatomy.bright_share * num_cases))
    subtypes = np.array(["bright"] * n_bright + ["dark"] * (num_cases - n_bright))
    rng.shuffle(subtypes)
    cases = []
    with atomic_folder(folder) as tmp:
        (tmp / "images").mkdir()
        (tmp / "tissues").mkdir()
        for i in range(num_cases):
            case = synthesize_ct_case(np.random.default_rng([spec.anatomy.seed, 1000 + i]), spec, str(subtypes[i]))
            name = f"ct_{i:03d}.nii.gz"
            _write_nifti(case["image"], case["spacing"], tmp / "images" / name)
            _write_nifti(case["tissue"], case["spacing"], tmp / "tissues" / name)
            cases.append({"file": name, "subtype": str(subtypes[i]), "spacing_xyz_mm": list(case["spacing"])})
        write_json(tmp / "corpus.json", {"tissues": list(TISSUES), "hu": HU, "cases": cases,
                                         "description": "nnunet-swin synthetic pelvic CT-like corpus"})
    return folder


__all__ = ["CTSpec", "TISSUES", "HU", "synthesize_ct_case", "make_ct_corpus"]
