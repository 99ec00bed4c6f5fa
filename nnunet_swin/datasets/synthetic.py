"""A synthetic dataset that looks like the paper's problem, in nnU-Net raw format.

Thick-slice pelvic T2-weighted-MRI-like volumes: in-plane spacing 0.35-0.65 mm, slices 3-4 mm, z-extents that after
resampling to 1 mm spread like the paper's cohort (median about 90 mm, IQR about 70-110, a share of far shorter
scans), and one tumour label attached to the rectal wall with two appearance subtypes (the paper's Cluster-B and
Cluster-D). Two appearance models (``SyntheticSpec.appearance``):

- ``separated`` (the default, the quickstart demo's data): ``bright`` tumours have a high, ``dark`` tumours a low
  contrast range, 0.4 mm and 3 mm edges; the two supports are disjoint, so any clustering finds them;
- ``continuous`` (the powered study's data): a hidden latent subtype drives continuous, overlapping draws. The
  contrast to the rectal wall ``c`` (tumour intensity / wall intensity - 1) is normal per subtype
  (``contrast_bright``, ``contrast_dark``: mean, sd), so a dark tumour can be darker than the wall (c < 0); the edge
  width is log-normal around a median that falls with c (``edge_mm``: median at c = 0.3, log-slope per unit c, log
  sd), correlated with contrast but not determined by it; the tumour volume is log-uniform 0.3-30 cm^3 for both
  subtypes; the tumour is shaped and placed before and independently of the scan's z-extent, and the scan crops it
  only when the tumour is longer than the scan. Test cases can be stratified by subtype and by pf under a cubic crop
  (``test_strata_crop``): the z-extent is drawn from the cohort distribution conditioned on the pf bin
  (0, (0, 0.5), >= 0.5).

Tumour sizes vary from about 0.3 to 30 cm^3 (small ones included). Everything is drawn from one seed, so the same
call writes byte-identical images. The true subtype of every case is written to ``subtypes_truth.csv`` in the
dataset folder (columns ``case_id,subtype,split,z_extent_mm,tumour_volume_mm3`` and the latent draws
``contrast_to_wall``, ``edge_mm``, ``tumour_volume_drawn_mm3`` (NaN under the separated model), ``pf_cubic64``
(pf under a 64^3 cubic crop) and ``stratum`` (the test case's pf bin, or empty)); nnU-Net ignores that file, and
``generator.json`` (the generator's ``hash``: sha256 of this module's source and the spec, and the spec).

Geometry is generated in physical millimetres on each case's own voxel grid, array order (X, Y, Z) for SimpleITK
(``GetImageFromArray`` takes (Z, Y, X)), identity direction.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from nnunet_swin.errors import UserError
from nnunet_swin.geometry.padding import padding_fractions
from nnunet_swin.io import atomic_folder, write_csv, write_json


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Extents in mm; counts in cases."""

    num_train: int = field(default=16, metadata={"help": "training cases"})
    num_test: int = field(default=6, metadata={"help": "test cases in imagesTs/labelsTs"})
    fov_mm: float = field(default=96.0, metadata={"help": "in-plane field of view in mm (square)"})
    z_median_mm: float = 90.0            # cohort-like z-extent distribution (before the short tail)
    z_iqr_mm: tuple[float, float] = (70.0, 110.0)
    short_share: float = 0.06            # share of far shorter scans (short_mm)
    short_mm: tuple[float, float] = (30.0, 50.0)
    z_clip_mm: tuple[float, float] = (40.0, 170.0)  # the log-normal draw is clipped to this range
    inplane_spacing_mm: tuple[float, float] = (0.35, 0.65)
    slice_thickness_mm: tuple[float, float] = (3.0, 4.0)
    bright_share: float = 0.5
    seed: int = 0
    channels: tuple[str, ...] = field(default=("T2",), metadata={
        "help": "image channels: T2, or T2 DWI for a second, diffusion-weighted-like channel (_0001)",
        "nargs": "+", "choices": ("T2", "DWI")})
    labels: str = field(default="tumour", metadata={
        "help": "tumour, or tumour+wall+nodes (1 tumour, 2 rectal wall, 3 lymph nodes)",
        "choices": ("tumour", "tumour+wall+nodes")})
    appearance: str = field(default="separated", metadata={
        "help": "separated: disjoint bright/dark subtypes (the quickstart demo); continuous: a hidden subtype drives "
                "overlapping contrast, edge and size draws (the powered study)",
        "choices": ("separated", "continuous")})
    # continuous appearance: contrast to the wall c = tumour / wall - 1, normal (mean, sd) per subtype
    contrast_bright: tuple[float, float] = (0.6, 0.2)
    contrast_dark: tuple[float, float] = (0.05, 0.15)
    # edge width (mm): log-normal, median edge_mm[0] at c = 0.3, log-median changing by edge_mm[1] per unit c,
    # log sd edge_mm[2]; clipped to edge_clip_mm
    edge_mm: tuple[float, float, float] = (1.2, -2.0, 0.5)
    edge_clip_mm: tuple[float, float] = (0.3, 5.0)
    volume_mm3: tuple[float, float] = (300.0, 30000.0)   # log-uniform tumour volume range, both subtypes
    train_bright_share: float | None = None               # None: bright_share (training cases)
    test_strata_crop: int | None = None                   # stratify the test cases by subtype x pf bin at this crop


APPEARANCES = ("separated", "continuous")
WALL = 245.0                                              # rectal wall intensity (T2-like units)
PF_BINS = ("pf=0", "0<pf<0.5", "pf>=0.5")
PF_CROP = 64                                              # the pf column of subtypes_truth.csv: a 64^3 cubic crop


LABEL_SETS = {"tumour": {"background": 0, "tumour": 1},
              "tumour+wall+nodes": {"background": 0, "tumour": 1, "rectal_wall": 2, "lymph_node": 3}}
CHANNELS = ("T2", "DWI")


def _draw_z_extent(rng: np.random.Generator, spec: SyntheticSpec) -> float:
    if rng.random() < spec.short_share:
        return float(rng.uniform(*spec.short_mm))
    sigma = np.log(spec.z_iqr_mm[1] / spec.z_iqr_mm[0]) / 1.349  # log-normal: IQR of log = 1.349 sigma
    return float(np.clip(np.exp(rng.normal(np.log(spec.z_median_mm), sigma)), *spec.z_clip_mm))


def _pf_bin(z_extent_mm: float, crop: int) -> str:
    """The pf bin (``PF_BINS``) of a scan of this z-extent under a cubic crop of ``crop`` 1-mm voxels."""
    pf = float(padding_fractions(round(z_extent_mm), crop))
    return PF_BINS[0] if pf == 0 else PF_BINS[2] if pf >= 0.5 else PF_BINS[1]


def draw_latents(rng: np.random.Generator, spec: SyntheticSpec, subtype: str, pf_bin: str | None = None) -> dict:
    """The continuous model's per-case draws, cheap (no volume is built): voxel spacing, z-extent (conditioned on
    ``pf_bin`` under ``spec.test_strata_crop`` when given), contrast to the wall, edge width, tumour volume, shape and
    placement. The tumour is drawn before the scan, so its size does not depend on the scan's extent."""
    if subtype not in ("bright", "dark"):
        raise UserError(f"subtype must be bright or dark, got {subtype!r}")
    mean, sd = spec.contrast_bright if subtype == "bright" else spec.contrast_dark   # the tumour first ...
    contrast = float(rng.normal(mean, sd))
    edge_median, edge_slope, edge_sd = spec.edge_mm
    edge = float(np.clip(np.exp(np.log(edge_median) + edge_slope * (contrast - 0.3) + rng.normal(0, edge_sd)),
                         *spec.edge_clip_mm))
    volume = float(np.exp(rng.uniform(np.log(spec.volume_mm3[0]), np.log(spec.volume_mm3[1]))))
    radii = (volume * 3 / (4 * np.pi)) ** (1 / 3) * rng.uniform(0.75, 1.3, size=3)
    angle, z_position = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 1))
    sp_xy = float(rng.uniform(*spec.inplane_spacing_mm))                                 # ... then the scan
    sp_z = float(rng.uniform(*spec.slice_thickness_mm))
    for _ in range(10000):
        nz = max(4, int(round(_draw_z_extent(rng, spec) / sp_z)))
        if pf_bin is None or _pf_bin(nz * sp_z, int(spec.test_strata_crop or 64)) == pf_bin:
            break
    else:
        raise UserError(f"the z-extent distribution never gives {pf_bin} under a {spec.test_strata_crop}^3 crop; "
                        f"widen z_clip_mm / short_mm or drop test_strata_crop")
    return {"spacing": (sp_xy, sp_xy, sp_z), "nz": nz, "z_extent_mm": nz * sp_z, "contrast_to_wall": contrast,
            "edge_mm": edge, "tumour_volume_drawn_mm3": volume, "radii_mm": radii, "angle": angle,
            "z_position": z_position}


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: tuple[float, ...]) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-6)


def tumor_on_wall(rng: np.random.Generator, grid, z: np.ndarray, cx: np.ndarray, cy: float, wall_r: float,
                   nz: int, sp_xy: float, sp_z: float,
                   latents: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An irregular ellipsoidal tumour (0.3-30 cm^3) on the rectal wall.

    grid: the (X, Y, Z) mm coordinate arrays; cx (the rectum's x centre along z), cy, wall_r in mm. Without
    ``latents`` (the separated model) size and place are drawn here, the z radius capped at 0.4 of the scan's extent;
    with them (``draw_latents``) the tumour keeps its drawn size and shape, lies inside the scan when it fits, and
    is cropped by the scan's ends when it is longer. Returns the uint8 label, the approximate signed distance to its
    surface (mm) and the smooth roughness field."""
    X, Y, Z = grid
    if latents is None:
        volume_target = float(np.exp(rng.uniform(np.log(300.0), np.log(30000.0))))  # mm^3
        radii = (volume_target * 3 / (4 * np.pi)) ** (1 / 3) * rng.uniform(0.75, 1.3, size=3)
        radii[2] = min(radii[2], 0.4 * nz * sp_z)
        angle = rng.uniform(0, 2 * np.pi)
        tz = rng.uniform(-0.3, 0.3) * nz * sp_z
    else:
        radii, angle = np.asarray(latents["radii_mm"], dtype=np.float64), latents["angle"]
        half = nz * sp_z / 2
        room = half - radii[2]                       # centre positions that keep the whole tumour in the scan
        tz = (2 * latents["z_position"] - 1) * (room if room > 0 else 0.1 * half)
    tx = float(np.interp(tz, z, cx[0, 0, :])) + wall_r * np.cos(angle)
    ty = cy + wall_r * np.sin(angle)
    d = np.sqrt(((X - tx) / radii[0]) ** 2 + ((Y - ty) / radii[1]) ** 2 + ((Z - tz) / radii[2]) ** 2)
    rough = _smooth_noise(rng, X.shape, (8.0 / sp_xy, 8.0 / sp_xy, 8.0 / sp_z))
    signed = (d - 1.0) * float(np.min(radii)) + 1.2 * rough         # approx. signed distance in mm
    label = (signed < 0).astype(np.uint8)
    if label.sum() == 0:  # a tiny draw that fell between voxel centres: keep the nearest voxel
        label[np.unravel_index(np.argmin(signed), signed.shape)] = 1
    return label, signed, rough


def synthesize_case(rng: np.random.Generator, spec: SyntheticSpec, subtype: str, pf_bin: str | None = None) -> dict:
    """One case: image and label arrays in (X, Y, Z) order, spacing (sx, sy, sz) in mm, and its metadata (with the
    continuous model's latent draws). ``pf_bin``: the continuous model's pf stratum (``PF_BINS``), or None."""
    if spec.appearance not in APPEARANCES:
        raise UserError(f"appearance must be one of {', '.join(APPEARANCES)}, got {spec.appearance!r}")
    latents = None
    if spec.appearance == "continuous":
        latents = draw_latents(rng, spec, subtype, pf_bin)
        sp_xy, sp_z, nz = latents["spacing"][0], latents["spacing"][2], latents["nz"]
    else:
        sp_xy = float(rng.uniform(*spec.inplane_spacing_mm))
        sp_z = float(rng.uniform(*spec.slice_thickness_mm))
        nz = max(4, int(round(_draw_z_extent(rng, spec) / sp_z)))
    nx = int(round(spec.fov_mm / sp_xy))
    spacing = (sp_xy, sp_xy, sp_z)
    x = (np.arange(nx) + 0.5) * sp_xy - spec.fov_mm / 2
    z = (np.arange(nz) + 0.5) * sp_z - nz * sp_z / 2
    X, Y, Z = np.meshgrid(x, x, z, indexing="ij")

    # body outline, subcutaneous fat, pelvic muscles, bladder, rectum (wall + lumen) running along z
    body_a, body_b = spec.fov_mm * rng.uniform(0.40, 0.46), spec.fov_mm * rng.uniform(0.32, 0.40)
    r_body = np.sqrt((X / body_a) ** 2 + (Y / body_b) ** 2)
    img = np.full(X.shape, 15.0, np.float32)                           # air
    img[r_body < 1.0] = 520.0                                          # fat (bright on T2)
    img[r_body < 0.86] = 300.0                                         # soft tissue
    for sx in (-1, 1):                                                 # obturator / levator-like muscles
        mx, my = sx * body_a * 0.5, body_b * rng.uniform(-0.1, 0.1)
        img[((X - mx) / (body_a * 0.22)) ** 2 + ((Y - my) / (body_b * 0.35)) ** 2 < 1] = 190.0
    by = -body_b * 0.45                                                # bladder (fluid, very bright), anterior
    bladder = ((X / (body_a * 0.3)) ** 2 + ((Y - by) / (body_b * 0.25)) ** 2 + (Z / 60.0) ** 2) < 1
    img[bladder] = 780.0
    cx = rng.uniform(-3, 3) + 3.0 * np.sin(Z / 25.0)                   # rectum axis, gently curving with z
    cy = body_b * 0.25 + rng.uniform(-3, 3)
    r_rect = np.sqrt((X - cx) ** 2 + (Y - cy) ** 2)
    wall_r = rng.uniform(9.0, 13.0)
    img[r_rect < wall_r] = WALL                                        # rectal wall
    img[r_rect < wall_r - 3.0] = 90.0                                  # lumen (dark)

    label, signed, rough = tumor_on_wall(rng, (X, Y, Z), z, cx, cy, wall_r, nz, sp_xy, sp_z, latents)

    if latents is not None:
        tumor_int, edge_mm = WALL * (1 + latents["contrast_to_wall"]), latents["edge_mm"]
    elif subtype == "bright":
        tumor_int, edge_mm = rng.uniform(430.0, 520.0), 0.4           # high contrast, sharp boundary
    else:
        tumor_int, edge_mm = rng.uniform(205.0, 235.0), 3.0           # low contrast, diffuse boundary
    weight = 1.0 / (1.0 + np.exp(signed / edge_mm))                    # soft inside-ness
    img = img * (1 - weight) + tumor_int * weight * (1 + 0.08 * rough)

    # acquisition: in-plane blur, smooth bias field, Rician-like noise
    img = ndimage.gaussian_filter(img, (0.6 / sp_xy, 0.6 / sp_xy, 0.3))
    bias = np.exp(0.12 * _smooth_noise(rng, X.shape, (40.0 / sp_xy, 40.0 / sp_xy, 40.0 / sp_z)))
    img = img * bias
    noise_sd = 18.0
    img = np.sqrt((img + rng.normal(0, noise_sd, img.shape)) ** 2 + rng.normal(0, noise_sd, img.shape) ** 2)
    voxel_mm3 = sp_xy * sp_xy * sp_z
    out = {
        "image": img.astype(np.float32),
        "label": label,
        "spacing": spacing,
        "z_extent_mm": nz * sp_z,
        "tumour_volume_mm3": float(label.sum() * voxel_mm3),
        "channels": {"T2": img.astype(np.float32)},
        "contrast_to_wall": float(tumor_int / WALL - 1),
        "edge_mm": float(edge_mm),
        "tumour_volume_drawn_mm3": latents["tumour_volume_drawn_mm3"] if latents else float("nan"),
    }
    # extras draw from the generator only after everything above, so the default dataset stays byte-identical
    if spec.labels == "tumour+wall+nodes" or "DWI" in spec.channels:
        wall = (r_rect < wall_r) & (r_rect >= wall_r - 3.0)
        nodes = np.zeros(X.shape, bool)
        for _ in range(int(rng.integers(1, 4))):                     # 1-3 mesorectal lymph nodes, 3-6 mm radius
            a = rng.uniform(0, 2 * np.pi)
            nx_, ny_ = cx[0, 0, nz // 2] + (wall_r + 9.0) * np.cos(a), cy + (wall_r + 9.0) * np.sin(a)
            nodes |= ((X - nx_) ** 2 + (Y - ny_) ** 2 + (Z - rng.uniform(-0.3, 0.3) * nz * sp_z) ** 2
                      < rng.uniform(3.0, 6.0) ** 2)
        if spec.labels == "tumour+wall+nodes":
            full = np.zeros(X.shape, np.uint8)
            full[wall], full[nodes & ~wall] = 2, 3
            full[label > 0] = 1
            out["label"] = full
        if "DWI" in spec.channels:  # high b-value DWI: tumour and nodes bright, fat and fluid dark, coarser, noisier
            dwi = np.full(X.shape, 20.0, np.float32)
            dwi[r_body < 0.86] = 60.0
            dwi[wall] = 110.0
            dwi[nodes] = 260.0
            dwi = dwi * (1 - weight) + 330.0 * weight
            dwi = ndimage.gaussian_filter(dwi, (1.5 / sp_xy, 1.5 / sp_xy, 0.5))
            out["channels"]["DWI"] = np.abs(dwi + rng.normal(0, 25.0, dwi.shape)).astype(np.float32)
    return out


def assign_cases(spec: SyntheticSpec) -> tuple[list[str], list[str | None]]:
    """Subtype and pf stratum of every case (training cases first). Training cases: ``train_bright_share`` (or
    ``bright_share``) bright; test cases: ``bright_share`` bright, or, with ``test_strata_crop``, the subtype x pf-bin
    cells (``PF_BINS``) filled in turn so every cell gets its share. Shuffled within each split with the seed."""
    rng = np.random.default_rng(spec.seed)
    n_total = spec.num_train + spec.num_test
    if spec.train_bright_share is None and spec.test_strata_crop is None:   # the original draw, byte for byte
        n_bright = int(round(spec.bright_share * n_total))
        subtypes = np.array(["bright"] * n_bright + ["dark"] * (n_total - n_bright))
        rng.shuffle(subtypes)
        return [str(t) for t in subtypes], [None] * n_total
    share = spec.bright_share if spec.train_bright_share is None else spec.train_bright_share
    n_bright = int(round(share * spec.num_train))
    train = ["bright"] * n_bright + ["dark"] * (spec.num_train - n_bright)
    rng.shuffle(train)
    if spec.test_strata_crop is None:
        n_bright = int(round(spec.bright_share * spec.num_test))
        test = [("bright", None)] * n_bright + [("dark", None)] * (spec.num_test - n_bright)
    else:
        cells = [(t, b) for t in ("bright", "dark") for b in PF_BINS]
        test = [cells[i % len(cells)] for i in range(spec.num_test)]
    order = rng.permutation(len(test))
    test = [test[i] for i in order]
    return train + [t for t, _ in test], [None] * spec.num_train + [b for _, b in test]


def generator_record(spec: SyntheticSpec) -> dict:
    """What made the data: ``hash`` = sha256 of this module's source and the spec's JSON (a change to either gives
    another hash), the spec itself, and the module. The study prints the hash; it changes when the generator does."""
    source = inspect.getsource(sys.modules[__name__])
    spec_json = json.dumps(asdict(spec), sort_keys=True)
    digest = hashlib.sha256(source.encode() + b"\0" + spec_json.encode()).hexdigest()
    return {"hash": digest, "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "module": __name__, "spec": json.loads(spec_json)}


def _write_nifti(array_xyz: np.ndarray, spacing: tuple[float, float, float], path: Path) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array_xyz.transpose(2, 1, 0)))
    image.SetSpacing(tuple(float(s) for s in spacing))
    sitk.WriteImage(image, str(path), useCompression=True)


def make_demo_dataset(nnunet_raw: str | os.PathLike, dataset_id: int = 501, name: str = "SyntheticRectum",
                      spec: SyntheticSpec = SyntheticSpec(), overwrite: bool = False, progress: bool = True) -> Path:
    """Write ``nnunet_raw/DatasetNNN_Name`` (imagesTr/labelsTr/imagesTs/labelsTs, dataset.json). Returns its path.

    The folder appears complete or not at all: it is built in a temporary sibling folder and renamed at the end.
    """
    if not 1 <= dataset_id <= 999:
        raise UserError(f"dataset id must be between 1 and 999, got {dataset_id}")
    if spec.labels not in LABEL_SETS or not spec.channels or set(spec.channels) - set(CHANNELS) \
            or spec.channels[0] != "T2":
        raise UserError(f"synthetic data has label sets {list(LABEL_SETS)} and channels T2 (first) and DWI; got "
                        f"labels {spec.labels!r}, channels {list(spec.channels)}")
    if spec.appearance not in APPEARANCES:
        raise UserError(f"appearance must be one of {', '.join(APPEARANCES)}, got {spec.appearance!r}")
    if spec.num_train < 2 or spec.num_test < 0:
        raise UserError(f"need at least 2 training cases and a non-negative test count, got "
                        f"num_train={spec.num_train}, num_test={spec.num_test}")
    raw = Path(nnunet_raw)
    raw.mkdir(parents=True, exist_ok=True)
    target = raw / f"Dataset{dataset_id:03d}_{name}"
    existing = [p for p in raw.glob(f"Dataset{dataset_id:03d}_*")]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; pick another id with -d or pass --overwrite")
    with atomic_folder(target) as tmp:
        for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
            (tmp / sub).mkdir()
        subtypes, strata = assign_cases(spec)
        n_total = spec.num_train + spec.num_test
        rows = []
        cases = range(n_total)
        if progress:
            from tqdm import tqdm
            cases = tqdm(cases, desc="synthetic cases", unit="case")
        for i in cases:
            split = "Tr" if i < spec.num_train else "Ts"
            case_id = f"{name.lower()}_{i:03d}"
            case = synthesize_case(np.random.default_rng([spec.seed, i]), spec, str(subtypes[i]), strata[i])
            for c, channel in enumerate(spec.channels):
                _write_nifti(case["channels"][channel], case["spacing"],
                             tmp / f"images{split}" / f"{case_id}_{c:04d}.nii.gz")
            _write_nifti(case["label"], case["spacing"], tmp / f"labels{split}" / f"{case_id}.nii.gz")
            rows.append({"case_id": case_id, "subtype": str(subtypes[i]), "split": "train" if split == "Tr" else "test",
                         "z_extent_mm": round(case["z_extent_mm"], 2),
                         "tumour_volume_mm3": round(case["tumour_volume_mm3"], 1),
                         "contrast_to_wall": round(case["contrast_to_wall"], 4), "edge_mm": round(case["edge_mm"], 3),
                         "tumour_volume_drawn_mm3": round(case["tumour_volume_drawn_mm3"], 1),
                         f"pf_cubic{PF_CROP}": round(float(padding_fractions(round(case["z_extent_mm"]), PF_CROP)), 4),
                         "stratum": strata[i] or ""})
        dataset_json = {
            "channel_names": {str(c): name for c, name in enumerate(spec.channels)},
            "labels": LABEL_SETS[spec.labels],
            "numTraining": spec.num_train,
            "file_ending": ".nii.gz",
            "name": name,
            "description": "nnunet-swin synthetic pelvic T2w-MRI-like tumour dataset "
                           "(bright/sharp and dark/diffuse subtypes)",
            "nnunet_swin_synthetic_spec": asdict(spec),
        }
        write_json(tmp / "dataset.json", dataset_json)
        write_csv(tmp / "subtypes_truth.csv", pd.DataFrame(rows))
        write_json(tmp / "generator.json", generator_record(spec))
        for p in existing:
            shutil.rmtree(p)
    return target
