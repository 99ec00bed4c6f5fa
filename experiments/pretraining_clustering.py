"""Do pretrained tokens carry tissue? A linear probe of frozen encoders on held-out CT-like volumes.

    python experiments/pretraining_clustering.py --checkpoint RUN/checkpoint_final.pth --work /tmp/probe \\
        --output experiments/results/pretraining

Arms (``pretraining_encoders.py``): the run's **student** and **teacher** encoders, and **random** initialisations of
the same layout with seeds 0, 1, 2 (``--seeds``; seed = the run's seed is the run's own starting weights). The
pretrained arms are one pretraining run; the seeds are the random arm's initialisation seeds, so the "seed standard
deviation" is how far the score moves between random initialisations.

Held-out data: ``--heldout`` CT-like volumes of ``make_ct_corpus(vary=True)`` with anatomy seed ``--corpus-seed``
(not the pretraining corpus's seed 0: none of these volumes was seen in pretraining), each with its tissue map.
Each goes through the pretraining preprocessing (1 mm, HU window -> [0, 1]); a centred ``--crop``^3 crop (padded
where smaller) goes through ``SwinSegmentationNetwork``'s encoder loaded with ``load_pretrained_encoder`` (the
fine-tuning path). Tokens of stage 1 (stride 4) and stage 2 (stride 8) are labelled with their majority tissue;
padding tokens are left out.

Measure: a linear probe (sklearn ``LogisticRegression`` on standardised tokens), cross-validated over volumes
(``FOLDS`` = 4 folds): each held-out volume is scored (balanced accuracy over the tissues present, all its tokens) by
a probe fitted on the other folds' volumes (at most 512 tokens per volume, the same rows for every arm). Why a probe and not k-means: the earlier k-means ARI asked whether tissue is the *dominant* direction of
variance in the tokens (random convolutions of intensity already give that), and it moved by about as much with the
k-means seed as the effects it looked for; a linear probe asks whether tissue is linearly decodable, the usual
frozen-feature test of DINO/iBOT encoders, and gives one score per held-out volume for a paired test.
Reference: the same probe on the token's mean intensity alone.

Statistics (``probe.md``, ``pretraining_encoders.downstream_statistics``): per arm the mean over volumes; the random
arm's mean and standard deviation over its seeds; pretrained minus random, with the verdict "pretrained minus random
larger than twice the seed standard deviation" or "not shown"; per volume, the exact signed-rank test of pretrained
against the mean of the random seeds, with n and its smallest attainable two-sided p (2 / 2^n), and the
Hodges-Lehmann estimate with its exact interval (``nnunet_swin.evaluation.paired_statistics``). Results are written per arm as they come (``rows.csv``), so a stopped run
resumes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
STAGES = {1: 4, 2: 8}
PROBE_TOKENS = 512        # training tokens per volume for the probe (all tokens of a held-out volume are scored)
FOLDS = 4                 # volume-level folds: each volume is scored by a probe fitted on the other folds' volumes


def _to_nnunet_frame(t: torch.Tensor) -> torch.Tensor:
    """(B, C, Z, Y, X) <-> (B, C, X, Y, Z), as SwinSegmentationNetwork feeds its encoder."""
    return t.permute(0, 1, 4, 3, 2)


def heldout_crops(corpus: Path, crop: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image crop (crop^3, [0, 1]), tissue crop (-1 = padding)) per held-out volume."""
    import SimpleITK as sitk
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape

    from nnunet_swin.pretraining.data import IntensityScheme, preprocess_volume
    out = []
    for path in sorted((corpus / "images").glob("*.nii.gz")):
        image, _ = preprocess_volume(path, (1.0, 1.0, 1.0), IntensityScheme("CT"), 16)
        tissue_img = sitk.ReadImage(str(corpus / "tissues" / path.name))
        tissue = sitk.GetArrayFromImage(tissue_img)[None].astype(np.float32)
        spacing = tuple(reversed(tissue_img.GetSpacing()))
        tissue = resample_data_or_seg_to_shape(tissue, image.shape, spacing, (1.0, 1.0, 1.0), is_seg=True,
                                               order=0, order_z=0, force_separate_z=None)[0].astype(np.int64)
        crop_img = np.zeros((crop,) * 3, np.float32)
        crop_tis = np.full((crop,) * 3, -1, np.int64)
        src, dst = [], []
        for s in image.shape:
            a = abs(s - crop) // 2
            src.append(slice(a, a + crop) if s >= crop else slice(0, s))
            dst.append(slice(0, crop) if s >= crop else slice(a, a + s))
        crop_img[tuple(dst)] = image[tuple(src)]
        crop_tis[tuple(dst)] = tissue[tuple(src)]
        out.append((path.name.split(".")[0], crop_img, crop_tis))
    return out


def tokens(crops, checkpoint: Path | None, crop: int) -> dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per stage, per volume: (features (N, C), majority tissue (N,), mean intensity (N,)) of the real tokens."""
    from nnunet_swin.datasets.synthetic_ct import TISSUES
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    from nnunet_swin.networks.weights import load_pretrained_encoder
    net = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")).eval()
    if checkpoint is not None:
        assert load_pretrained_encoder(net, checkpoint).complete
    out = {s: [] for s in STAGES}
    for _, img, tis in crops:
        x = torch.from_numpy(img)[None, None]
        with torch.no_grad():
            feats = net.encoder(_to_nnunet_frame(x).contiguous())
        for stage, stride in STAGES.items():
            f = _to_nnunet_frame(feats[stage])[0]                                    # (C, z, y, x)
            assert crop // f.shape[1] == stride
            t = torch.from_numpy(tis).view(f.shape[1], stride, f.shape[2], stride, f.shape[3], stride)
            t = t.permute(0, 2, 4, 1, 3, 5).reshape(-1, stride ** 3)
            onehot = F.one_hot((t + 1).clamp(min=0), len(TISSUES) + 1).sum(1)        # column 0 = padding
            real = onehot[:, 0] * 2 < stride ** 3
            majority = onehot[:, 1:].argmax(1)
            inten = F.avg_pool3d(x, stride)[0, 0].reshape(-1)
            out[stage].append((f.reshape(f.shape[0], -1).t()[real].numpy(), majority[real].numpy(),
                               inten[real].numpy()))
    return out


def _subsample(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``PROBE_TOKENS`` training tokens per volume (fixed seed per volume; every arm gets the same rows)."""
    if len(y) <= PROBE_TOKENS:
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), PROBE_TOKENS, replace=False))
    return x[keep], y[keep]


def probe_scores(per_volume: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """Per volume: balanced accuracy of a standardised logistic-regression probe fitted on the other folds' volumes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    scores = [float("nan")] * len(per_volume)
    for fold in range(FOLDS):
        held = [i for i in range(len(per_volume)) if i % FOLDS == fold]
        train = [_subsample(*v, seed=j) for j, v in enumerate(per_volume) if j not in held]
        x, y = np.concatenate([v[0] for v in train]), np.concatenate([v[1] for v in train])
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
        for i in held:
            xt, yt = per_volume[i]
            keep = np.isin(yt, np.unique(y))               # a tissue no training volume has cannot be probed
            scores[i] = float(balanced_accuracy_score(yt[keep], probe.predict(xt[keep])))
    return scores


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="a pretraining run's checkpoint_final.pth")
    p.add_argument("--output", type=Path, default=HERE / "results" / "pretraining")
    p.add_argument("--work", type=Path, default=Path("/tmp/nnunet_swin_probe"), help="held-out corpus, encoders")
    p.add_argument("--heldout", type=int, default=8)
    p.add_argument("--corpus-seed", type=int, default=100)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    torch.set_num_threads(2)
    import pandas as pd

    from nnunet_swin.datasets.synthetic import SyntheticSpec
    from nnunet_swin.datasets.synthetic_ct import CTSpec, make_ct_corpus
    from nnunet_swin.io import write_csv, write_json, write_text
    from pretraining_encoders import ARMS, downstream_statistics, encoder_checkpoints, statistics_table

    corpus = args.work / "heldout"
    if not (corpus / "corpus.json").is_file():
        make_ct_corpus(corpus, args.heldout, CTSpec(anatomy=SyntheticSpec(seed=args.corpus_seed), vary=True),
                       overwrite=True)
    paths = encoder_checkpoints(args.checkpoint, args.work / "encoders", args.seeds)
    crops = heldout_crops(corpus, args.crop)
    names = [c[0] for c in crops]
    args.output.mkdir(parents=True, exist_ok=True)
    rows_path = args.output / "probe_rows.csv"
    table = pd.read_csv(rows_path) if rows_path.is_file() else pd.DataFrame(
        columns=["arm", "stage", "volume", "balanced_accuracy", "tokens"])
    for arm in ["intensity_only", *paths]:
        if arm in set(table.arm):
            continue
        toks = tokens(crops, paths.get(arm), args.crop)
        new = []
        for stage, vols in toks.items():
            data = [(v[2][:, None], v[1]) if arm == "intensity_only" else (v[0], v[1]) for v in vols]
            for name, score, v in zip(names, probe_scores(data), vols):
                new.append({"arm": arm, "stage": stage, "volume": name, "balanced_accuracy": score,
                            "tokens": len(v[1])})
        table = pd.concat([table, pd.DataFrame(new)], ignore_index=True)
        write_csv(rows_path, table)
        print(arm, table[table.arm == arm].groupby("stage").balanced_accuracy.mean().round(4).to_dict(), flush=True)

    stats = []
    for stage in STAGES:
        t = table[(table.stage == stage) & (table.arm != "intensity_only")].rename(
            columns={"volume": "unit", "balanced_accuracy": "value"})
        seed = t.arm.str.extract(r"random_seed(\d+)")[0]
        t = t.assign(seed=seed.fillna("run").to_numpy(), arm=np.where(seed.isna(), t.arm, "random"))
        t["value"] = t["value"].astype(float)
        stats += [{**downstream_statistics(t, arm), "stage": stage, "label": f"{stage} ({STAGES[stage]})"}
                  for arm in ARMS]
    write_json(args.output / "probe.json", {"checkpoint_run": args.checkpoint.parent.name, "heldout": names,
                                            "corpus_seed": args.corpus_seed, "crop": args.crop,
                                            "seeds": args.seeds, "statistics": stats})
    lines = ["Linear probe (balanced accuracy over tissues, 4 volume folds) of frozen encoders, "
             f"{len(names)} held-out CT-like volumes, crop {args.crop}; seeds = the random arm's initialisation "
             "seeds (the pretrained arms are one run, scored once)", ""]
    lines += statistics_table(stats, "stage (stride)")
    ref = table[table.arm == "intensity_only"].groupby("stage").balanced_accuracy.mean()
    lines += ["", "Mean intensity alone: " + ", ".join(f"stage {k} {v:.4f}" for k, v in ref.items())]
    write_text(args.output / "probe.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
