"""The acceptance runs of issue 22 through the CLI, and their numbers.

    python experiments/pretraining_acceptance.py corpus --work /tmp/acc            # varied + near-identical corpora
    python experiments/pretraining_acceptance.py run --work /tmp/acc --name smit_varied --corpus varied --method smit
    python experiments/pretraining_acceptance.py run --work /tmp/acc --name smart_varied --corpus varied --method smart
    python experiments/pretraining_acceptance.py run --work /tmp/acc --name smart_crop64 --corpus varied \
        --method smart -- --crop 64 --epochs 10                                  # 200 steps at crop 64
    python experiments/pretraining_acceptance.py summarise --work /tmp/acc --output experiments/results/pretraining_acceptance

Runs: ``smit_tiny``, crop 32, batch 2 volumes, 20 epochs x 20 iterations = 400 steps, heads 1024 / 512 / 64,
``--lr-per-sample 5e-4``, every other setting at the CLI's defaults (SMIT's, with the ramps scaled to the short
run). Corpora: ``varied`` = 12 CT-like volumes from ``make_ct_corpus(vary=True)`` plus the real chest CT the project
ships (``shared/data/real/pyrad_lung1_0000.nii.gz``); ``plain`` = 12 volumes of the one phantom with noise
(``vary=False``), the "near-identical volumes" of the collapse facts.

``summarise`` (rows of runs already in ``acceptance.json`` are kept) reads each run's ``losses.json`` and ``checkpoint_final.pth`` metadata (or ``checkpoint_latest.pth``
of a run stopped early) and writes ``acceptance.json`` and ``acceptance.md``: last-epoch means of the losses and of
the monitor (teacher entropy, logit std, cosine, class-attention entropy), the first collapse warning, the
teacher's remaining share of its init and the distances each encoder moved; for SMART also the class-token
distillation (CTD) and the teacher's normalised class-attention entropy, over the last epoch and at the last step.
No absolute paths are recorded.
"""
from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
from pathlib import Path

REAL_CT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real" / "pyrad_lung1_0000.nii.gz"
RUN_ARGS = ["-backbone", "smit_tiny", "--modality", "CT", "--epochs", "20", "--iterations-per-epoch", "20",
            "--crop", "32", "--batch-size", "2", "--device", "cpu", "--out-dim", "1024", "--head-hidden", "512",
            "--head-bottleneck", "64", "--lr-per-sample", "5e-4", "--num-workers", "1", "--save-every", "1",
            "--quiet"]


def make_corpora(work: Path, cases: int = 12) -> None:
    from nnunet_swin.datasets.synthetic import SyntheticSpec
    from nnunet_swin.datasets.synthetic_ct import CTSpec, make_ct_corpus
    make_ct_corpus(work / "varied", cases, CTSpec(anatomy=SyntheticSpec(seed=0), vary=True), overwrite=True)
    if REAL_CT.is_file():
        shutil.copy(REAL_CT, work / "varied" / "images" / REAL_CT.name)
    make_ct_corpus(work / "plain", cases, CTSpec(anatomy=SyntheticSpec(seed=0), vary=False), overwrite=True)


def run(work: Path, name: str, corpus: str, method: str, seed: int, extra: list[str]) -> int:
    cmd = [sys.executable, "-m", "nnunet_swin", "pretrain", "-i", str(work / corpus / "images"), "-o",
           str(work / name), "--method", method, "--seed", str(seed)] + RUN_ARGS + extra
    if (work / name / "checkpoint_latest.pth").is_file():
        cmd.append("--continue")
    return subprocess.call(cmd)


def summarise_run(folder: Path) -> dict:
    import numpy as np

    from nnunet_swin.io import read_json
    from nnunet_swin.networks.weights import read_checkpoint
    record = read_json(folder / "losses.json", "pretraining history")
    history = record["history"]
    ckpt = folder / "checkpoint_final.pth"
    if not ckpt.is_file():
        ckpt = folder / "checkpoint_latest.pth"
    meta = read_checkpoint(ckpt)["metadata"]
    last = max(r["epoch"] for r in history)
    rows = [r for r in history if r["epoch"] == last]
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and k not in ("epoch", "iteration")]
    means = {k: float(np.nanmean([np.nan if r.get(k) is None else r[k] for r in rows])) for k in keys}
    ln_k = math.log(record["config"]["out_dim"])
    dist = meta["distance_from_init"]
    out = {"steps": meta["steps"], "epochs_completed": meta["epochs_completed"], "method": meta["method"],
           "num_volumes": meta["num_volumes"], "ln_k": ln_k, "last_epoch": last + 1, "last_epoch_steps": len(rows),
           "last_epoch_means": means, "collapse": meta["monitor"].get("first_collapse"),
           "teacher_init_share": meta["teacher_init_share"], "encoder_loaded": meta["encoder_loaded"],
           "encoder_rule": meta["encoder_rule"], "distance_from_init": dist,
           "teacher_over_student_distance": dist["teacher"] / dist["student"] if dist["student"] else None,
           "loaded_over_student_distance": dist[meta["encoder_loaded"]] / dist["student"] if dist["student"] else None,
           "crop": record["config"]["crop"]}
    if "class_attention_entropy" in history[-1]:
        att = [r.get("class_attention_entropy") for r in history]
        out["class_attention_entropy_last_step"] = history[-1]["class_attention_entropy"]
        out["class_attention_entropy_first_epoch"] = float(np.nanmean(
            [np.nan if a is None else a for a, r in zip(att, history) if r["epoch"] == 0]))
    return out


def summarise(work: Path, output: Path) -> None:
    from nnunet_swin.io import write_json, write_text
    from nnunet_swin.io import read_json
    runs = read_json(output / "acceptance.json", "acceptance results") if (output / "acceptance.json").is_file() else {}
    runs.update({p.name: summarise_run(p) for p in sorted(work.iterdir())        # earlier runs' rows are kept
                 if p.is_dir() and ((p / "checkpoint_final.pth").is_file() or (p / "checkpoint_latest.pth").is_file())})
    runs = dict(sorted(runs.items()))
    write_json(output / "acceptance.json", runs)
    lines = ["| run | steps | ITD (last epoch) | ln K - ITD | teacher entropy ITD / MPD | logit std ITD / MPD | "
             "cosine ITD | CTD | class-attention entropy | collapse warning | teacher init share | exported | "
             "teacher / student distance |", "|" + "---|" * 13]
    smart = ["| run | crop | steps | CTD (last epoch) | ln K - CTD | teacher entropy CTD | logit std CTD | cosine CTD | "
             "class-attention entropy: first epoch / last epoch / last step |", "|" + "---|" * 9]
    for name, r in runs.items():
        m = r["last_epoch_means"]

        def f(key, fmt="{:.4f}"):
            return fmt.format(m[key]) if key in m and m[key] == m[key] else "-"
        col = r["collapse"]
        lines.append(f"| {name} | {r['steps']} | {f('itd')} | {r['ln_k'] - m.get('itd', float('nan')):.3f} | "
                     f"{f('teacher_entropy_itd')} / {f('teacher_entropy_mpd')} | {f('logit_std_itd')} / "
                     f"{f('logit_std_mpd')} | {f('cosine_itd')} | {f('ctd')} | {f('class_attention_entropy')} | "
                     + (f"epoch {col['epoch']} (step {col['step']}, {', '.join(col['heads'])})" if col else "none")
                     + f" | {r['teacher_init_share']:.3f} | {r['encoder_loaded']} | "
                     f"{r['teacher_over_student_distance']:.2f} |")
        if "ctd" in m:
            smart.append(f"| {name} | {r['crop']} | {r['steps']} | {f('ctd')} | {r['ln_k'] - m['ctd']:.3f} | "
                         f"{f('teacher_entropy_ctd')} | {f('logit_std_ctd')} | {f('cosine_ctd')} | "
                         f"{r['class_attention_entropy_first_epoch']:.4f} / {f('class_attention_entropy')} / "
                         f"{r['class_attention_entropy_last_step']:.4f} |")
    if len(smart) > 2:
        lines += ["", "SMART:", ""] + smart
    write_text(output / "acceptance.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["corpus", "run", "summarise"])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--name")
    p.add_argument("--corpus", default="varied")
    p.add_argument("--method", default="smit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path)
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []        # more `nnunet-swin pretrain` options
    a = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if a.step == "corpus":
        make_corpora(a.work)
        return 0
    if a.step == "run":
        return run(a.work, a.name, a.corpus, a.method, a.seed, extra)
    summarise(a.work, a.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
