"""Tumour appearance subtypes: seven per-scan features, z-scoring, k-means with k chosen by cluster validity.

Paper section 2.6 and appendix A. Features of one image-label pair (image (Z, Y, X), spacing (z, y, x) in mm),
computed on the image intensity-normalised as in paper section 2.1 (clipped at the 99th percentile of its
non-zero voxels and scaled to [0, 1]):

1. ``tumour_intensity``     mean intensity inside the tumour;
2. ``background_intensity`` mean over non-tumour voxels with non-zero intensity (so padding is left out);
3. ``contrast``             tumour - background (difference of the two means);
4. ``cnr``                  contrast / standard deviation of the background voxels;
5. ``boundary_gradient``    mean gradient magnitude (intensity per mm, ``np.gradient`` with the spacing) over the
                            3-voxel boundary band: from 1 voxel outside to 2 voxels inside the tumour surface;
6. ``tumour_volume``        mm^3;
7. ``tumour_heterogeneity`` standard deviation of the tumour intensities (the seventh feature; the paper names only
                            six, and its "tumour intensity" is read here as mean and spread).

Clustering: tumour volume enters as log10(mm^3) (volumes spread over two orders of magnitude, so raw z-scores
let a few large tumours form clusters of their own); z-score on the training set, k-means for k in [2, 5] (k <= n - 1), scored by silhouette (higher
better), Calinski-Harabasz (higher) and Davies-Bouldin (lower); the chosen k is the one most metrics pick, ties
broken by silhouette. The fitted scaler and centroids are stored as JSON and reused on the test set (nearest
centroid in z-space). Clusters are named by contrast: with k = 2 the higher-contrast one is ``B`` (bright) and the
other ``D`` (dark); otherwise ``S1``..``Sk`` from highest to lowest contrast.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from nnunet_swin.errors import UserError
from nnunet_swin.io import write_json

FEATURES = ("tumour_intensity", "background_intensity", "contrast", "cnr", "boundary_gradient",
            "tumour_volume", "tumour_heterogeneity")
LOG_SCALED = ("tumour_volume",)


def normalise_intensity(image: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Clip at the given percentile of the non-zero voxels and scale to [0, 1] (paper section 2.1)."""
    image = np.asarray(image, dtype=np.float64)
    nonzero = image[image != 0]
    if nonzero.size == 0:
        return np.zeros_like(image)
    lo, hi = min(0.0, float(image.min())), float(np.percentile(nonzero, percentile))
    if hi <= lo:
        return np.zeros_like(image)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0)


def boundary_band(label: np.ndarray) -> np.ndarray:
    """The 3-voxel band around the tumour surface: 1 voxel outside to 2 voxels inside (full 3D connectivity)."""
    structure = ndimage.generate_binary_structure(3, 3)
    outer = ndimage.binary_dilation(label, structure, iterations=1)
    inner = ndimage.binary_erosion(label, structure, iterations=2, border_value=1)
    return outer & ~inner


def tumor_features(image: np.ndarray, label: np.ndarray, spacing: tuple[float, float, float],
                    normalise: bool = True, tumor_labels=None) -> dict[str, float]:
    """The seven features (module docstring) of one scan. image, label: (Z, Y, X); spacing (z, y, x) in mm.
    ``tumor_labels``: the label values that are tumour (default: every foreground label, ``label > 0``); the other
    labels (e.g. rectal wall) count as background."""
    if image.shape != label.shape or image.ndim != 3:
        raise UserError(f"image and label must be 3-D arrays of one shape, got {image.shape} and {label.shape}")
    tumour = np.asarray(label) > 0 if tumor_labels is None else np.isin(label, [int(t) for t in tumor_labels])
    if not tumour.any():
        raise UserError("the label has no tumour voxels; appearance features need a tumour")
    img = normalise_intensity(image) if normalise else np.asarray(image, dtype=np.float64)
    background = (~tumour) & (np.asarray(image) != 0)
    if background.sum() < 2:
        raise UserError("the image has fewer than 2 non-zero voxels outside the tumour; no background statistics")
    t_vals, b_vals = img[tumour], img[background]
    contrast = float(t_vals.mean() - b_vals.mean())
    b_sd = float(b_vals.std())
    grads = np.gradient(img, *[float(s) for s in spacing])
    gmag = np.sqrt(sum(g ** 2 for g in grads))
    return {
        "tumour_intensity": float(t_vals.mean()),
        "background_intensity": float(b_vals.mean()),
        "contrast": contrast,
        "cnr": contrast / b_sd if b_sd > 0 else float("nan"),
        "boundary_gradient": float(gmag[boundary_band(tumour)].mean()),
        "tumour_volume": float(tumour.sum() * np.prod([float(s) for s in spacing])),
        "tumour_heterogeneity": float(t_vals.std()),
    }


@dataclass
class SubtypeModel:
    """Everything needed to assign subtypes to new cases: stored as JSON."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    k: int
    centroids: list[list[float]]          # (k, features) in z-space, in name order
    names: list[str]
    validity: list[dict] = field(default_factory=list)   # per k: silhouette, calinski_harabasz, davies_bouldin
    seed: int = 0

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SubtypeModel":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0]
            raise UserError(f"cannot read the subtype model {path} ({reason}); give the subtype_model.json a "
                            f"fitting run wrote (`nnunet-swin subtypes --train-images ... --train-labels ... -o OUT` "
                            f"writes OUT/subtype_model.json)") from None


def _matrix(features: pd.DataFrame, names: list[str]) -> np.ndarray:
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise UserError(f"feature table lacks columns {missing}")
    x = features[list(names)].to_numpy(dtype=np.float64, copy=True)
    if not np.isfinite(x).all():
        bad = features.index[~np.isfinite(x).all(axis=1)].tolist()
        raise UserError(f"non-finite features for cases {bad}; check those images and labels")
    for j, name in enumerate(names):
        if name in LOG_SCALED:  # log-normal across patients: z-score its logarithm, not the raw mm^3
            x[:, j] = np.log10(np.maximum(x[:, j], 1e-3))
    return x


def choose_k(validity: pd.DataFrame) -> int:
    """Majority of the three validity metrics' best k; silhouette breaks ties."""
    votes = [int(validity.loc[validity.silhouette.idxmax(), "k"]),
             int(validity.loc[validity.calinski_harabasz.idxmax(), "k"]),
             int(validity.loc[validity.davies_bouldin.idxmin(), "k"])]
    counts = {k: votes.count(k) for k in votes}
    best = max(counts.values())
    winners = [k for k, c in counts.items() if c == best]
    return votes[0] if votes[0] in winners or len(winners) > 1 else winners[0]


def check_k(k_range: tuple[int, int] = (2, 5), k: int | None = None) -> None:
    """The number of subtypes asked for: ``k`` (forced) or the range ``k_range`` searched, each at least 2."""
    if k is not None:
        if k < 2:
            raise UserError(f"--k must be at least 2 (subtypes split the cases into two or more clusters), got {k}")
        return
    k_lo, k_hi = k_range
    if k_lo < 2:
        raise UserError(f"--k-min must be at least 2 (subtypes split the cases into two or more clusters), got {k_lo}")
    if k_hi < k_lo:
        raise UserError(f"--k-min {k_lo} is above --k-max {k_hi}; give --k-min <= --k-max")


def fit_subtypes(features: pd.DataFrame, k_range: tuple[int, int] = (2, 5), seed: int = 0,
                 k: int | None = None) -> SubtypeModel:
    """Fit the scaler and k-means on a training feature table (rows = cases, columns include FEATURES)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
    from sklearn.preprocessing import StandardScaler

    check_k(k_range, k)
    names = list(FEATURES)
    x = _matrix(features, names)
    n = x.shape[0]
    k_lo, k_hi = k_range
    if k is not None:
        k_lo = k_hi = k
    if n < k_lo + 1:
        raise UserError(f"{n} cases are too few for k-means with k >= {k_lo} "
                        f"(cluster validity needs at least k + 1 cases); add training cases or lower --k-min / --k")
    k_hi = min(k_hi, n - 1)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    z = (x - scaler.mean_) / scale
    rows, fits = [], {}
    for kk in range(k_lo, k_hi + 1):
        km = KMeans(n_clusters=kk, n_init=20, random_state=seed).fit(z)
        if len(set(km.labels_)) < 2:
            continue
        fits[kk] = km
        rows.append({"k": kk, "silhouette": float(silhouette_score(z, km.labels_)),
                     "calinski_harabasz": float(calinski_harabasz_score(z, km.labels_)),
                     "davies_bouldin": float(davies_bouldin_score(z, km.labels_))})
    if not rows:
        raise UserError("k-means found fewer than 2 distinct clusters; the features do not vary across cases")
    validity = pd.DataFrame(rows)
    chosen = choose_k(validity)
    centroids = fits[chosen].cluster_centers_
    contrast_col = names.index("contrast")
    order = np.argsort(-centroids[:, contrast_col])          # highest contrast first
    labels = ["B", "D"] if chosen == 2 else [f"S{i + 1}" for i in range(chosen)]
    return SubtypeModel(features=names, mean=scaler.mean_.tolist(), scale=scale.tolist(), k=chosen,
                        centroids=centroids[order].tolist(), names=labels, validity=rows, seed=seed)


def assign_subtypes(model: SubtypeModel, features: pd.DataFrame) -> pd.DataFrame:
    """Nearest stored centroid in the stored z-space. Returns a copy of ``features`` with ``subtype`` and
    ``distance`` (Euclidean, z-units) columns."""
    x = _matrix(features, model.features)
    z = (x - np.asarray(model.mean)) / np.asarray(model.scale)
    d = np.linalg.norm(z[:, None, :] - np.asarray(model.centroids)[None], axis=2)
    out = features.copy()
    idx = d.argmin(axis=1)
    out["subtype"] = [model.names[i] for i in idx]
    out["distance"] = d[np.arange(len(idx)), idx]
    return out
