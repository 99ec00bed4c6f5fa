"""Does pretraining make the tokens cluster by tissue? SMIT and SMART on a CT-like corpus, against random weights.

1. A synthetic pelvic CT-like corpus (``nnunet_swin.datasets.synthetic_ct``): ``--cases`` volumes for pretraining,
   ``--heldout`` more for the measure; plus the real CT volume(s) of ``../shared/data/real`` in the pretraining set.
2. ``nnunet-swin pretrain``'s loop (``Pretrainer``) with ``--method smit`` and ``--method smart`` on the reduced
   ``smit_tiny`` backbone, on CPU, with a shortened schedule (the command is recorded in the results).
3. The measure (SMART's "unsupervised organ clustering", made concrete): each held-out volume goes through the same
   preprocessing (1 mm, HU window -> [0, 1]); a centred 64^3 crop (padded where smaller) goes through the encoder
   of ``SwinSegmentationNetwork`` loaded from the checkpoint with ``load_pretrained_encoder`` (the fine-tuning
   path); the skip tokens of stage 1 (stride 4) and stage 2 (stride 8) of all held-out crops are pooled, reduced by
   PCA to 16 dimensions and clustered by k-means with k = the number of tissue classes present; the adjusted Rand
   index (sklearn) compares clusters with each token's majority tissue (``synthetic_ct.TISSUES``). Random weights
   (same seed) and k-means on the token's mean intensity are the references. Padding tokens are left out.

    python experiments/pretraining_clustering.py --output experiments/results/pretraining
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "real"


def build_corpus(out: Path, cases: int, heldout: int, seed: int):
    from nnunet_swin.datasets.synthetic import SyntheticSpec
    from nnunet_swin.datasets.synthetic_ct import CTSpec, make_ct_corpus
    corpus = out / "corpus"
    if not corpus.is_dir():
        make_ct_corpus(corpus, cases + heldout, CTSpec(anatomy=SyntheticSpec(seed=seed)))
    names = sorted(p.name for p in (corpus / "images").iterdir())
    train = out / "pretraining_images"
    if not train.is_dir():
        train.mkdir(parents=True)
        for n in names[:cases]:
            shutil.copy(corpus / "images" / n, train / n)
        for real in sorted(REAL.glob("*lung*_0000.nii.gz")):
            shutil.copy(real, train / real.name)
    return corpus, names[cases:], sorted(train.iterdir())


def pretrain(out: Path, images, method: str, args) -> Path:
    from nnunet_swin.pretraining.trainer import FINAL, Pretrainer, PretrainConfig
    folder = out / f"pt_{method}"
    if (folder / FINAL).is_file():
        return folder / FINAL
    cfg = PretrainConfig(method=method, backbone="smit_tiny", modality="CT", crop=args.crop, batch_size=args.batch,
                         epochs=args.epochs, iterations_per_epoch=args.iterations, out_dim=args.out_dim,
                         head_hidden=args.head_hidden, head_bottleneck=64, warmup_epochs=max(1, args.epochs // 10),
                         teacher_temp_warmup_epochs=max(1, args.epochs // 3),
                         patch_temp_delay_epochs=max(1, args.epochs // 3),
                         patch_temp_warmup_epochs=max(1, args.epochs // 3), num_workers=1, save_every=args.epochs,
                         seed=args.seed, lr_per_sample=args.lr_per_sample)
    started = time.time()
    Pretrainer(cfg, folder, images, device="cpu", progress=False).run()
    (folder / "wall_time_s.txt").write_text(f"{time.time() - started:.1f}\n")
    return folder / FINAL


def _to_nnunet_frame(t: torch.Tensor) -> torch.Tensor:
    """(B, C, Z, Y, X) <-> (B, C, X, Y, Z), as SwinSegmentationNetwork feeds its encoder."""
    return t.permute(0, 1, 4, 3, 2)


def heldout_tokens(corpus: Path, names, encoder_net, crop: int):
    """Per stage: (features (N, C), tissue (N,), intensity (N,)) of all real tokens of the held-out crops."""
    import SimpleITK as sitk

    from nnunet_swin.pretraining.data import IntensityScheme, preprocess_volume
    from nnunet_swin.datasets.synthetic_ct import TISSUES
    from nnunetv2.preprocessing.resampling.default_resampling import resample_data_or_seg_to_shape
    out = {1: [], 2: []}
    for name in names:
        image, info = preprocess_volume(corpus / "images" / name, (1.0, 1.0, 1.0), IntensityScheme("CT"), 16)
        tissue_img = sitk.ReadImage(str(corpus / "tissues" / name))
        tissue = sitk.GetArrayFromImage(tissue_img)[None].astype(np.float32)
        spacing = tuple(reversed(tissue_img.GetSpacing()))
        tissue = resample_data_or_seg_to_shape(tissue, image.shape, spacing, (1.0, 1.0, 1.0), is_seg=True,
                                               order=0, order_z=0, force_separate_z=None)[0].astype(np.int64)
        crop_img = np.zeros((crop,) * 3, np.float32)
        crop_tis = np.full((crop,) * 3, -1, np.int64)
        src, dst = [], []
        for s in image.shape:
            if s >= crop:
                a = (s - crop) // 2
                src.append(slice(a, a + crop))
                dst.append(slice(0, crop))
            else:
                a = (crop - s) // 2
                src.append(slice(0, s))
                dst.append(slice(a, a + s))
        crop_img[tuple(dst)] = image[tuple(src)]
        crop_tis[tuple(dst)] = tissue[tuple(src)]
        x = torch.from_numpy(crop_img)[None, None]
        with torch.no_grad():
            feats = encoder_net.encoder(_to_nnunet_frame(x).contiguous())
        for stage in (1, 2):
            f = _to_nnunet_frame(feats[stage])[0]                                    # (C, z, y, x)
            stride = crop // f.shape[1]
            t = torch.from_numpy(crop_tis).view(f.shape[1], stride, f.shape[2], stride, f.shape[3], stride)
            t = t.permute(0, 2, 4, 1, 3, 5).reshape(-1, stride ** 3)
            onehot = F.one_hot((t + 1).clamp(min=0), len(TISSUES) + 1).sum(1)        # column 0 = padding
            real = onehot[:, 0] * 2 < stride ** 3
            majority = onehot[:, 1:].argmax(1)
            inten = F.avg_pool3d(x, stride)[0, 0].reshape(-1)
            out[stage].append((f.reshape(f.shape[0], -1).t()[real].numpy(), majority[real].numpy(),
                               inten[real].numpy()))
    return {s: tuple(np.concatenate([v[i] for v in vals]) for i in range(3)) for s, vals in out.items()}


def ari(features: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler
    x = StandardScaler().fit_transform(features)
    if x.shape[1] > 16:
        x = PCA(16, random_state=seed).fit_transform(x)
    k = len(np.unique(labels))
    pred = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
    return float(adjusted_rand_score(labels, pred))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default=str(HERE / "results" / "pretraining"))
    p.add_argument("--work", default="/tmp/nnunet_swin_pretraining_experiment", help="corpus, caches, checkpoints")
    p.add_argument("--cases", type=int, default=8)
    p.add_argument("--heldout", type=int, default=3)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--out-dim", type=int, default=1024)
    p.add_argument("--head-hidden", type=int, default=512)
    p.add_argument("--lr-per-sample", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(2)
    work, results = Path(args.work), Path(args.output)
    work.mkdir(parents=True, exist_ok=True)
    corpus, heldout, images = build_corpus(work, args.cases, args.heldout, args.seed)
    print(f"pretraining on {len(images)} volumes ({args.cases} synthetic CT + real CT), held out: {heldout}")

    from nnunet_swin.networks.weights import load_pretrained_encoder
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.networks.segmentation import SwinSegmentationNetwork
    rows = {}
    for model in ("random", "smit", "smart"):
        torch.manual_seed(args.seed)
        net = SwinSegmentationNetwork(1, 2, **get_preset("smit_tiny")).eval()
        if model != "random":
            ckpt = pretrain(work, images, model, args)
            report = load_pretrained_encoder(net, ckpt)
            assert report.complete
            hist = json.loads((ckpt.parent / "losses.json").read_text())["history"]
            first = np.mean([r["loss"] for r in hist if r["epoch"] == 0])
            last = np.mean([r["loss"] for r in hist if r["epoch"] == args.epochs - 1])
            rows.setdefault("losses", {})[model] = {"first_epoch": float(first), "last_epoch": float(last),
                                                    "wall_time_s": float((ckpt.parent / "wall_time_s.txt")
                                                                         .read_text())}
        tokens = heldout_tokens(corpus, heldout, net, args.crop)
        for stage, (feat, lab, inten) in tokens.items():
            rows.setdefault(f"stage{stage}", {})[model] = ari(feat, lab, args.seed)
            rows[f"stage{stage}"]["intensity_only"] = ari(inten[:, None], lab, args.seed)
            rows[f"stage{stage}"]["tokens"] = int(len(lab))
            rows[f"stage{stage}"]["classes"] = int(len(np.unique(lab)))
        print(model, {k: v.get(model) for k, v in rows.items() if k.startswith("stage")}, flush=True)

    results.mkdir(parents=True, exist_ok=True)
    for model in ("smit", "smart"):
        shutil.copy(work / f"pt_{model}" / "loss_curve.png", results / f"loss_curve_{model}.png")
        shutil.copy(work / f"pt_{model}" / "pretrain_log.txt", results / f"pretrain_log_{model}.txt")
    from nnunet_swin.io import write_json, write_text
    write_json(results / "clustering.json", {"args": vars(args), "command": " ".join(sys.argv), **rows})
    lines = ["| tokens | random weights | SMIT | SMART | mean intensity only | tokens (classes) |", "|---|---|---|---|---|---|"]
    for stage, stride in ((1, 4), (2, 8)):
        r = rows[f"stage{stage}"]
        lines.append(f"| stage {stage} skip (stride {stride}) | {r['random']:.3f} | {r['smit']:.3f} | "
                     f"{r['smart']:.3f} | {r['intensity_only']:.3f} | {r['tokens']} ({r['classes']}) |")
    loss = rows["losses"]
    lines += ["", "| method | mean loss, first epoch | last epoch | wall time (s) |", "|---|---|---|---|"]
    lines += [f"| {m} | {loss[m]['first_epoch']:.4f} | {loss[m]['last_epoch']:.4f} | {loss[m]['wall_time_s']:.0f} |"
              for m in ("smit", "smart")]
    write_text(results / "clustering.md", "Adjusted Rand index of k-means token clusters vs tissue classes "
               "(held-out synthetic CT crops)\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
