"""A CT-like counterpart of the synthetic pelvic MRI (``synthetic.py``): the same anatomy classes in Hounsfield units.

Same body outline, subcutaneous fat, pelvic muscles, bladder, rectum (wall + lumen) running along z and one tumour
on the rectal wall (``bright`` = enhancing, ``dark`` = hypo-attenuating), drawn with the MRI generator's shape
helpers (``_draw_z_extent``, ``_smooth_noise``) and its ``SyntheticSpec``; but on a CT grid (in-plane 0.7-0.9 mm,
slices 1-2.5 mm), with CT contrast (gas in the lumen, fluid bladder, fat darker than muscle), CT noise (Gaussian,
about 12 HU) and a slight in-plane blur. Every case also has its **tissue map** (``TISSUES``), the ground truth of
the pretraining experiment's clustering measure.

``CTSpec.vary`` (default True) makes every volume different, so that self-distillation has instance signal to
learn (near-identical phantoms make SMIT's distillation collapse, see ``docs`` / the README): per volume it draws
the field of view (0.75-1.5x) and how much of it the body fills, the body's shape, the size and position of bladder,
muscles and rectum, 0-4 bones (300-1000 HU) and 0-3 extra soft-tissue organs, the texture (amplitude 2-20 HU,
correlation length 2-12 mm), the noise (6-30 HU) and the contrast (soft tissue and muscle enhancement, fat level,
a contrast-filled bladder in 30% of volumes). ``vary=False`` gives the one pelvic phantom with noise (what the
collapse experiment calls "near-identical volumes").

Arrays are (X, Y, Z) like ``synthetic.py`` (SimpleITK writes them as (Z, Y, X)). Deterministic from the seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from nnunet_swin.datasets.synthetic import SyntheticSpec, _draw_z_extent, _smooth_noise, _write_nifti, tumor_on_wall
from nnunet_swin.errors import UserError
from nnunet_swin.io import atomic_folder, write_json

TISSUES = ("air", "fat", "soft_tissue", "muscle", "bladder", "rectal_wall", "lumen", "tumour", "bone")
HU = {"air": -1000.0, "fat": -100.0, "soft_tissue": 40.0, "muscle": 55.0, "bladder": 8.0, "rectal_wall": 45.0,
      "lumen": -850.0, "bone": 600.0}


@dataclass(frozen=True)
class CTSpec:
    """The anatomy draws of ``SyntheticSpec`` (extents, subtype share, seed) plus the CT acquisition."""
    anatomy: SyntheticSpec = SyntheticSpec()
    inplane_spacing_mm: tuple[float, float] = (0.7, 0.9)
    slice_thickness_mm: tuple[float, float] = (1.0, 2.5)
    noise_hu: float = 12.0
    vary: bool = True                  # every volume its own anatomy, field of view, texture and contrast


def _variation(rng: np.random.Generator | None) -> dict:
    """Per-volume draws (``rng`` None: the plain phantom's constants)."""
    if rng is None:
        return {"fov": 1.0, "body": (0.40, 0.46, 0.32, 0.40), "bladder": 1.0, "muscle": 1.0, "rect_y": 0.25,
                "bones": 0, "organs": 0, "texture_hu": 6.0, "texture_mm": 6.0, "noise": None, "hu": dict(HU)}
    hu = dict(HU)
    hu["soft_tissue"] += float(rng.uniform(-15, 45))
    hu["muscle"] += float(rng.uniform(-10, 25))
    hu["fat"] += float(rng.uniform(-30, 20))
    hu["rectal_wall"] = hu["soft_tissue"] + float(rng.uniform(-5, 20))
    if rng.random() < 0.3:
        hu["bladder"] = float(rng.uniform(100, 300))           # contrast-filled
    hu["bone"] = float(rng.uniform(300, 1000))
    lo, hi = sorted(rng.uniform(0.25, 0.48, 2))
    lo2, hi2 = sorted(rng.uniform(0.2, 0.42, 2))
    return {"fov": float(rng.uniform(0.75, 1.5)), "body": (lo, hi + 0.01, lo2, hi2 + 0.01),
            "bladder": float(rng.uniform(0.5, 1.5)), "muscle": float(rng.uniform(0.6, 1.5)),
            "rect_y": float(rng.uniform(0.1, 0.4)), "bones": int(rng.integers(0, 5)), "organs": int(rng.integers(0, 4)),
            "texture_hu": float(rng.uniform(2, 20)), "texture_mm": float(rng.uniform(2, 12)),
            "noise": float(rng.uniform(6, 30)), "hu": hu}


def synthesize_ct_case(rng: np.random.Generator, spec: CTSpec, subtype: str) -> dict:
    """One case: ``image`` (HU, float32), ``tissue`` (uint8 index into ``TISSUES``), ``label`` (tumour, uint8), all
    (X, Y, Z), and ``spacing`` (sx, sy, sz) mm."""
    a = spec.anatomy
    var = _variation(rng if spec.vary else None)
    fov = a.fov_mm * var["fov"]
    sp_xy = float(rng.uniform(*spec.inplane_spacing_mm))
    sp_z = float(rng.uniform(*spec.slice_thickness_mm))
    z_mm = _draw_z_extent(rng, a)
    nx = int(round(fov / sp_xy))
    nz = max(4, int(round(z_mm / sp_z)))
    x = (np.arange(nx) + 0.5) * sp_xy - fov / 2
    z = (np.arange(nz) + 0.5) * sp_z - nz * sp_z / 2
    X, Y, Z = np.meshgrid(x, x, z, indexing="ij")
    t = {name: i for i, name in enumerate(TISSUES)}

    ba, bb, ca, cb = var["body"]
    body_a, body_b = a.fov_mm * rng.uniform(ba, bb), a.fov_mm * rng.uniform(ca, cb)
    r_body = np.sqrt((X / body_a) ** 2 + (Y / body_b) ** 2)
    tissue = np.full(X.shape, t["air"], np.uint8)
    tissue[r_body < 1.0] = t["fat"]
    tissue[r_body < 0.86] = t["soft_tissue"]
    for _ in range(var["organs"]):                              # extra soft-tissue organs (varied corpus only)
        ox, oy = rng.uniform(-0.5, 0.5) * body_a, rng.uniform(-0.5, 0.5) * body_b
        rx, ry, rz = rng.uniform(4, max(5, 0.25 * body_a)), rng.uniform(4, max(5, 0.25 * body_b)), rng.uniform(10, 50)
        oz = rng.uniform(-0.5, 0.5) * z_mm
        tissue[((X - ox) / rx) ** 2 + ((Y - oy) / ry) ** 2 + ((Z - oz) / rz) ** 2 < 1] = t["muscle"]
    for sx in (-1, 1):
        mx, my = sx * body_a * 0.5, body_b * rng.uniform(-0.1, 0.1)
        tissue[((X - mx) / (body_a * 0.22 * var["muscle"])) ** 2 + ((Y - my) / (body_b * 0.35)) ** 2 < 1] = \
            t["muscle"]
    for _ in range(var["bones"]):                               # bones (varied corpus only)
        ox, oy = rng.uniform(-0.7, 0.7) * body_a, rng.uniform(-0.7, 0.7) * body_b
        r_in = rng.uniform(3, 12)
        tissue[((X - ox) / r_in) ** 2 + ((Y - oy) / (r_in * rng.uniform(0.5, 1.5))) ** 2 < 1] = t["bone"]
    by = -body_b * 0.45
    bl = var["bladder"]
    tissue[((X / (body_a * 0.3 * bl)) ** 2 + ((Y - by) / (body_b * 0.25 * bl)) ** 2 + (Z / (60.0 * bl)) ** 2) < 1] \
        = t["bladder"]
    cx = rng.uniform(-3, 3) + 3.0 * np.sin(Z / 25.0)
    cy = body_b * var["rect_y"] + rng.uniform(-3, 3)
    r_rect = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    wall_r = rng.uniform(9.0, 13.0)
    tissue[r_rect < wall_r] = t["rectal_wall"]
    tissue[r_rect < wall_r - 3.0] = t["lumen"]

    label, signed, rough = tumor_on_wall(rng, (X, Y, Z), z, cx, cy, wall_r, nz, sp_xy, sp_z)
    tissue[label > 0] = t["tumour"]

    lut = np.array([var["hu"].get(name, 0.0) for name in TISSUES], np.float32)
    img = lut[tissue]
    tumor_hu = rng.uniform(85.0, 110.0) if subtype == "bright" else rng.uniform(15.0, 28.0)
    edge_mm = 0.5 if subtype == "bright" else 2.5
    weight = 1.0 / (1.0 + np.exp(np.clip(signed / edge_mm, -50, 50)))
    img = img * (1 - weight) + tumor_hu * weight * (1 + 0.05 * rough)
    tex = var["texture_mm"]
    img += var["texture_hu"] * _smooth_noise(rng, X.shape, (tex / sp_xy, tex / sp_xy, tex / sp_z)) * (tissue != t["air"])
    img = ndimage.gaussian_filter(img, (0.4 / sp_xy, 0.4 / sp_xy, 0.2))
    img = img + rng.normal(0.0, var["noise"] if var["noise"] is not None else spec.noise_hu, img.shape)
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
        write_json(tmp / "corpus.json", {"tissues": list(TISSUES), "hu": HU, "cases": cases, "varied": spec.vary,
                                         "description": "nnunet-swin synthetic pelvic CT-like corpus"
                                         + (" (anatomy, field of view, texture and contrast vary per volume)"
                                            if spec.vary else " (one phantom with noise: near-identical volumes)")})
    return folder


__all__ = ["CTSpec", "TISSUES", "HU", "synthesize_ct_case", "make_ct_corpus"]
