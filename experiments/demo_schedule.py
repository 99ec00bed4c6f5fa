"""Is the demo schedule long enough, and what does the powered demo study cost? From nnU-Net training logs.

    .venv/bin/python experiments/demo_schedule.py --curve RUN/fold_0/training_log_*.txt \
        --epoch-times experiments/results/study_demo/logs --output experiments/results/demo_schedule

1. ``--curve``: the training log of one run at a candidate schedule (the schedule check: ``SwinACTTrainer`` at the
   candidate epochs x iterations on the powered demo dataset, validated on a held-out part of its training cases).
   Per epoch: the pseudo-Dice nnU-Net logs and its exponential moving average (nnU-Net's own: 0.9 old + 0.1 new),
   and the change of that average over the last 20% of the epochs (the flatness criterion: below 0.02).
2. ``--epoch-times``: a folder of ``train_<arm>.log`` files of a study on 2 CPU cores (median seconds per epoch per
   arm), scaled to the powered study's 10 arms at the candidate epochs (arms without a log take the median of the
   arms of their crop: ``3d_fullres`` for ACT-noTA, ACT-rep, D-only; the CNN is reported apart when it has no log).

Writes ``curve.csv`` and ``summary.md``; prints the summary.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

EPOCH = re.compile(r"Epoch (\d+)\s*$")
DICE = re.compile(r"Pseudo dice \[(.*)\]")
TIME = re.compile(r"Epoch time: ([\d.]+) s")
FULLRES = ("ACT", "ACT-noTA", "ACT-rep", "Scratch", "B-only", "D-only")
CUBIC = ("Base", "TA", "Masked")


def read_curve(log: Path) -> pd.DataFrame:
    """One row per finished epoch: epoch, pseudo_dice (mean over foreground labels), ema, seconds."""
    rows, epoch, dice = [], None, None
    for line in log.read_text().splitlines():
        if m := EPOCH.search(line):
            epoch = int(m.group(1))
        elif m := DICE.search(line):
            dice = float(np.mean([float(v) for v in re.findall(r"\d+\.\d+|nan", m.group(1))]))
        elif (m := TIME.search(line)) and epoch is not None:
            rows.append({"epoch": epoch, "pseudo_dice": dice, "seconds": float(m.group(1))})
    curve = pd.DataFrame(rows, columns=["epoch", "pseudo_dice", "seconds"])
    ema = []
    for d in curve.pseudo_dice:
        ema.append(d if not ema else 0.9 * ema[-1] + 0.1 * d)
    curve["ema"] = ema
    return curve


def last_fifth_change(curve: pd.DataFrame, epochs: int) -> dict[str, float]:
    """How much pseudo-Dice moves over the last 20% of ``epochs``: the least-squares line through the raw values of
    those epochs times their span, the mean of those epochs minus the mean of the 20% before, and nnU-Net's EMA at
    the last epoch minus at the epoch before the window (the EMA lags about 10 epochs, so it still rises for a while
    after the raw values have levelled off)."""
    n = int(round(0.2 * epochs))
    last, before = curve.iloc[epochs - n:epochs], curve.iloc[epochs - 2 * n:epochs - n]
    slope = float(np.polyfit(last.epoch, last.pseudo_dice, 1)[0])
    return {"fit": slope * (n - 1), "means": float(last.pseudo_dice.mean() - before.pseudo_dice.mean()),
            "ema": float(curve.ema.iloc[epochs - 1] - curve.ema.iloc[epochs - n - 1]),
            "mean": float(last.pseudo_dice.mean()), "first": int(last.epoch.iloc[0])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--curve", type=Path, required=True)
    p.add_argument("--epoch-times", type=Path, required=True)
    p.add_argument("--planned-epochs", type=int, default=None, help="the candidate's epochs (default: the log's)")
    p.add_argument("--epochs", type=int, nargs="+", default=[30, 40, 60, 100], help="schedules to cost")
    p.add_argument("--output", type=Path, required=True)
    a = p.parse_args()
    curve = read_curve(a.curve)
    planned = a.planned_epochs or len(curve)
    a.output.mkdir(parents=True, exist_ok=True)
    curve.round(4).to_csv(a.output / "curve.csv", index=False)
    per_arm = {}
    for log in sorted(a.epoch_times.glob("train_*.log")):
        t = read_curve(log).seconds
        if len(t):
            per_arm[log.stem[len("train_"):]] = float(t.median())
    fullres = float(np.median([per_arm[k] for k in FULLRES if k in per_arm]))
    cubic = float(np.median([per_arm[k] for k in CUBIC if k in per_arm]))
    study = {arm: per_arm.get(arm, fullres if arm in FULLRES else cubic) for arm in FULLRES + CUBIC}
    per_epoch = sum(study.values())
    lines = [f"# Demo schedule check ({a.curve.name})", "",
             f"- run: {len(curve)} of {planned} planned epochs finished; median {curve.seconds.median():.1f} s per "
             f"epoch (this run's machine load, not a clean timing)", ""]
    lines += ["| epoch | pseudo-Dice | EMA |", "|---|---|---|"]
    lines += [f"| {r.epoch} | {r.pseudo_dice:.3f} | {r.ema:.3f} |" for r in curve.itertuples()
              if r.epoch % 5 == 4 or r.epoch == len(curve) - 1]
    if len(curve) >= planned:
        c = last_fifth_change(curve, planned)
        lines += ["", f"Over the last 20% of the {planned} epochs (epochs {c['first']}-{planned - 1}; criterion: pseudo-Dice "
                      f"moves by less than 0.02): the fitted line moves {c['fit']:+.3f}; their mean "
                      f"({c['mean']:.3f}) minus the mean of the 20% before: {c['means']:+.3f}; nnU-Net's EMA moves "
                      f"{c['ema']:+.3f} (lagging)."]
    lines += ["", "## Cost of the powered study on 2 CPU cores", "",
              "Median seconds per epoch (25 iterations) from the study logs given; arms without a log take their "
              "crop's median:", "", "| arm | s / epoch | from |", "|---|---|---|"]
    lines += [f"| {arm} | {s:.1f} | {'log' if arm in per_arm else 'crop median'} |" for arm, s in study.items()]
    lines += ["", f"Sum over these 9 Swin arms: {per_epoch:.0f} s per epoch (the CNN baseline comes on top).", "",
              "| epochs | training, 9 Swin arms (h) |", "|---|---|"]
    lines += [f"| {e} | {e * per_epoch / 3600:.2f} |" for e in a.epochs]
    text = "\n".join(lines) + "\n"
    (a.output / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
