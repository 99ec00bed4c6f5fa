"""Surface Dice time per case: nnunet_swin vs DeepMind's algorithm vs MONAI, on the same masks in one run.

Cases on a (Z, Y, X) = 40 x 512 x 512 grid with spacing (3.0, 0.43, 0.43) mm, tolerance 2 mm:
- lesion: a 20 cm^3 sphere vs a prediction shifted by (1.6, -0.6, 0.8) mm with radius + 0.5 mm;
- organ: a 1.6 L ellipsoid vs a shifted prediction with semi-axes + 1 mm.
"DeepMind algorithm" is the test oracle (tests/evaluation/deepmind_surface_oracle.py): DeepMind's published
steps, including its Python sort of the distance/area pairs. MONAI is ``compute_surface_dice(use_subvoxels=True)``.

Run: python benchmarks/bench_surface_dice.py [--repeats N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))

from deepmind_surface_oracle import deepmind_surface_dice  # noqa: E402

from nnunet_swin.evaluation import surface_dice  # noqa: E402

SHAPE = (40, 512, 512)
SPACING = (3.0, 0.43, 0.43)
TOLERANCE = 2.0


def ellipsoid(centre_mm, semi_axes_mm) -> np.ndarray:
    z, y, x = (np.arange(n) * s for n, s in zip(SHAPE, SPACING))
    return (((z[:, None, None] - centre_mm[0]) / semi_axes_mm[0]) ** 2
            + ((y[None, :, None] - centre_mm[1]) / semi_axes_mm[1]) ** 2
            + ((x[None, None, :] - centre_mm[2]) / semi_axes_mm[2]) ** 2) <= 1.0


def cases():
    centre = np.array([20 * 3.0, 256 * 0.43, 256 * 0.43])
    r = (20_000 * 3 / (4 * np.pi)) ** (1 / 3)  # 20 cm^3
    yield "lesion 20 cm^3", ellipsoid(centre, (r, r, r)), ellipsoid(centre + [1.6, -0.6, 0.8], (r + .5,) * 3)
    axes = np.array([50.0, 87.0, 88.0])  # 1.6 L
    yield "organ 1.6 L", ellipsoid(centre, axes), ellipsoid(centre + [1.5, 1.0, -1.2], axes + 1.0)


def monai_surface_dice(ref, pred):
    import torch
    from monai.metrics import compute_surface_dice

    y = torch.from_numpy(ref)[None, None]
    p = torch.from_numpy(pred)[None, None]
    return float(compute_surface_dice(p, y, class_thresholds=[TOLERANCE], include_background=True,
                                      spacing=SPACING, use_subvoxels=True)[0, 0])


def timed(fn, repeats: int):
    value = fn()  # warm-up (LUT construction, imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return value, min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"grid {SHAPE} (Z, Y, X), spacing {SPACING} mm, tolerance {TOLERANCE} mm, {args.repeats} repeats\n")
    print("| case | implementation | sDSC | |difference| to ours | best (ms) | median (ms) | ours faster by (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, ref, pred in cases():
        runs = {
            "nnunet_swin surface_dice": lambda: surface_dice(pred, ref, SPACING, TOLERANCE),
            "DeepMind algorithm (oracle, with its sort)": lambda: deepmind_surface_dice(ref, pred, SPACING, TOLERANCE),
            "DeepMind algorithm without its sort": lambda: deepmind_surface_dice(ref, pred, SPACING, TOLERANCE,
                                                                                 sort=False),
            "MONAI compute_surface_dice(use_subvoxels=True)": lambda: monai_surface_dice(ref, pred),
        }
        results = {k: timed(fn, args.repeats if "MONAI" not in k else max(2, args.repeats // 2))
                   for k, fn in runs.items()}
        ours_value, _, ours = results["nnunet_swin surface_dice"]
        for impl, (value, best, median) in results.items():
            print(f"| {name} | {impl} | {value:.6f} | {abs(value - ours_value):.1e} | {1e3 * best:.1f} | "
                  f"{1e3 * median:.1f} | {median / ours:.1f}x |")


if __name__ == "__main__":
    main()
