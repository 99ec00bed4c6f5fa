"""The report's Design and training sections: what the study ran before any result is read.

- cases per subtype (``subtypes/subtypes_summary.json``), the clusters' agreement with the generator's hidden
  subtype when audited (``subtypes/subtypes_audit.json``) and the test split's padding fractions (``adi``);
- steps per arm: epochs x iterations per epoch, from the trainer's own lines in the arm's training log
  (``logs/train_<arm>.log``: the progress lines of ``trainers.progress`` and the recipe's "epoch = N training
  iterations" line), else from nnU-Net's ``fold_X/debug.json`` when the model folder is there (written before our
  recipe sets the epoch length: its ``recipe_iterations_per_epoch``, else a stock trainer's count);
- seeds: ``debug.json``'s ``seed`` (a seeded trainer's class attribute), else the seeded trainer's log line, else
  ``study.json``; "not set" for a stock trainer, which seeds nothing;
- the stage mapping: which encoder stage has the paper's stage-3 token map (``study_findings.comparable_stage``,
  from the crop geometry alone, before any result);
- the synthetic generator's hash (``generator.json`` key ``hash`` in the raw dataset, or in the study folder);
- training curves per arm from the same logs (or nnU-Net's checkpoint ``logging`` when the log has no progress
  lines, or, last, nnU-Net's own epoch lines in the log: a stock trainer such as the CNN baseline's).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from nnunet_swin.workflows import study_figures as fig
from nnunet_swin.workflows.study_evidence import PATCH, PAPER_STAGE3_TOKENS, comparable_stage, read_json
from nnunet_swin.workflows.training_log import nnunet_log_curve, progress_curve, training_curve

ITERATIONS = re.compile(r"epoch = (\d+) training iterations")
SEED = re.compile(r": seed (\d+) \(random")      # the seeded trainers' log line (trainers.seeding)
CASES = re.compile(r"This split has (\d+) training and (\d+) validation cases")   # nnU-Net's do_split line
PAPER_CROP = 128                # SMIT's cubic crop (voxels a side)
DEFAULT_WINDOW = 4


def in_study(root: Path, text: str | None) -> Path | None:
    """A path ``study.json`` recorded: absolute as it is, else relative to the study folder."""
    if not text:
        return None
    path = Path(text)
    return path if path.is_absolute() else root / path


def _arm(state: dict, name: str) -> dict:
    return state.get("arms", {}).get(name) or {}


def arm_log_text(root: Path, state: dict, name: str) -> str:
    log = in_study(root, _arm(state, name).get("log")) or root / "logs" / f"train_{name}.log"
    try:
        return log.read_text(errors="replace")
    except OSError:
        return ""


def _debug(root: Path, state: dict, name: str) -> dict:
    folder = in_study(root, _arm(state, name).get("model_folder"))
    for fold in _arm(state, name).get("folds") or [0]:
        found = read_json(folder / f"fold_{fold}" / "debug.json") if folder else None
        if found:
            return found
    return {}


def _int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def schedule(root: Path, state: dict, name: str) -> dict:
    """Epochs run / planned, iterations per epoch, optimiser steps and training cases (nnU-Net's split line) of one
    arm (None where unknown)."""
    debug, text = _debug(root, state, name), arm_log_text(root, state, name)
    curve = progress_curve(text)
    # the recipe's own line states what it ran; nnU-Net writes debug.json before the recipe sets its epoch length,
    # so there only our recipe's attribute (or a stock trainer's count) is right
    hit = ITERATIONS.findall(text)
    iterations = int(hit[-1]) if hit else _int(debug.get("recipe_iterations_per_epoch")) or \
        _int(debug.get("num_iterations_per_epoch"))
    planned = (curve.attrs.get("num_epochs") if curve is not None else None) or _int(debug.get("num_epochs"))
    run = len(curve) if curve is not None else ((_arm(state, name).get("cost") or {}).get("epochs"))
    seed = _int(debug.get("seed"))
    if seed is None and (hit := SEED.findall(text)):
        seed = int(hit[-1])
    if seed is None:
        seed = _arm(state, name).get("seed")
    cases = CASES.findall(text)
    return {"epochs": run, "planned": planned, "iterations": iterations, "seed": seed,
            "training cases": int(cases[-1][0]) if cases else None,
            "steps": run * iterations if run is not None and iterations is not None else None,
            "source": "training log" if hit or curve is not None else "debug.json" if debug else "study.json"}


def curve(root: Path, state: dict, name: str) -> pd.DataFrame | None:
    """Per-epoch losses and pseudo-Dice of one arm: its training log's progress lines, else the checkpoint."""
    text = arm_log_text(root, state, name)
    found = progress_curve(text)
    if found is not None:
        return found
    folder = in_study(root, _arm(state, name).get("model_folder"))
    for fold in _arm(state, name).get("folds") or [0]:
        for ckpt in ("checkpoint_final.pth", "checkpoint_latest.pth"):
            if folder and (folder / f"fold_{fold}" / ckpt).is_file():
                try:
                    return training_curve(folder / f"fold_{fold}" / ckpt)
                except (OSError, KeyError, RuntimeError, EOFError):
                    continue
    return nnunet_log_curve(text)       # a stock nnU-Net trainer's own epoch lines (the CNN baseline)


def generator_hash(root: Path, state: dict) -> str | None:
    raw = in_study(root, (state.get("environment") or {}).get("nnUNet_raw"))
    for candidate in ([raw / state.get("dataset", ""), ] if raw else []) + [root]:
        found = read_json(candidate / "generator.json")
        if found and found.get("hash"):
            return str(found["hash"])
    return None


def stage_mapping(state: dict, stages: int = 4) -> tuple[pd.DataFrame, str] | None:
    """Token map per encoder stage under the demo's cubic and ACT crops and under the paper's SMIT crop, with the
    paper stage each demo stage is compared with. None when no cubic arm recorded its patch."""
    target = comparable_stage(state)
    arms = state.get("arms", {})
    cubic = next((arms[a]["cost"]["patch_size"] for a in ("Base", "TA", "Masked")
                  if (arms.get(a) or {}).get("cost")), None)
    act = ((arms.get("ACT") or {}).get("cost") or {}).get("patch_size")
    if cubic is None:
        return None
    window = DEFAULT_WINDOW
    offset = None if target is None else 3 - target

    def tokens(patch, k):
        shape = [max(1, int(p) // PATCH // 2 ** k) for p in patch]
        padded = [-(-s // window) * window for s in shape]       # Swin pads each axis to whole windows
        text = "x".join(map(str, shape)) + f" [{'x'.join(str(s // window) for s in padded)}]"
        return text + (f", padded to {'x'.join(map(str, padded))}" if padded != shape else "")

    rows = []
    for k in range(stages):
        paper = None if offset is None else k + offset
        rows.append({"demo stage": f"S{k}", "cubic crop tokens [windows]": tokens(cubic, k),
                     "ACT crop tokens [windows]": tokens(act, k) if act else "n/a",
                     "paper stage": f"S{paper}" if paper is not None and paper <= 3 else "none",
                     "paper tokens (128^3) [windows]": tokens([PAPER_CROP] * 3, paper)
                     if paper is not None and paper <= 3 else "no SMIT counterpart"})
    side = PAPER_STAGE3_TOKENS
    text = (f"Window {window}, patch embedding {PATCH}. Demo stage {target} is compared with the paper's stage 3: "
            f"the same {side}^3 token map under the cubic crop and the same window grid, chosen from the crop "
            f"geometry alone (before any result). Deeper demo stages have no SMIT counterpart (their ADI under ACT "
            f"is window padding) and are reported as not comparable." if target is not None else
            "No demo stage has the paper's stage-3 token map (8 tokens a side) under the cubic crop; no ADI row is "
            "compared with the paper's stage 3.")
    return pd.DataFrame(rows), text


def design_section(page, root: Path, state: dict, order: list[str], figures: Path) -> None:
    page.heading("Design")
    subtypes = read_json(root / "subtypes" / "subtypes_summary.json")
    if subtypes:
        counts = {split: (subtypes.get(split) or {}).get("counts", {}) for split in ("train", "test")}
        names = list(dict.fromkeys(n for c in counts.values() for n in c))
        page.text(f"Cases per appearance subtype (k-means, k = {subtypes.get('k')}; fitted on the training cases):")
        page.table(pd.DataFrame([{"split": s, **{n: c.get(n, 0) for n in names}, "total": sum(c.values())}
                                 for s, c in counts.items() if c]))
        audit = read_json(root / "subtypes" / "subtypes_audit.json")
        if audit and audit.get("splits"):
            page.text("Clusters against the generator's hidden subtype (`subtypes/subtypes_audit.json`): " + "; ".join(
                f"{split}: adjusted Rand {a.get('adjusted_rand', float('nan')):.2f}, accuracy "
                f"{a.get('accuracy', float('nan')):.2f} (n = {a.get('n')})" for split, a in audit["splits"].items())
                + ".")
    else:
        page.text("Cases per subtype: no subtypes step output (`subtypes/subtypes_summary.json`).")
    adi = pd.read_csv(root / "adi" / "adi_per_scan.csv") if (root / "adi" / "adi_per_scan.csv").is_file() else None
    cubic = next((m for m in ("TA", "Base", "Masked") if adi is not None and m in set(adi.model)), None)
    if cubic:
        pf = adi[adi.model == cubic].pf
        page.figure(fig.pf_histogram(pf, figures / "pf_histogram.png", f"cubic ({cubic})"),
                    f"padding fraction of the {len(pf)} test scans under the cubic crop")
    else:
        page.text("Padding-fraction histogram: no ADI of a cubic arm (`adi/adi_per_scan.csv`).")
    rows = []
    for name in order:
        s = schedule(root, state, name)
        arm = _arm(state, name)
        rows.append({"arm": name, "trainer": arm.get("trainer", ""), "configuration": arm.get("configuration", ""),
                     "epochs run": "n/a" if s["epochs"] is None else s["epochs"],
                     "planned": "n/a" if s["planned"] is None else s["planned"],
                     "iterations / epoch": "n/a" if s["iterations"] is None else s["iterations"],
                     "optimiser steps": "n/a" if s["steps"] is None else s["steps"],
                     "training cases": "n/a" if s["training cases"] is None else s["training cases"],
                     "seed": "not set (nnU-Net's own)" if s["seed"] is None else s["seed"], "from": s["source"]})
    if rows:
        page.text("Steps per arm (epochs x iterations per epoch):")
        page.table(pd.DataFrame(rows))
    mapping = stage_mapping(state)
    page.heading("Stage mapping", 3)
    if mapping is None:
        page.text("No cubic arm recorded its patch size (`study.json`), so no stage is mapped to the paper's.")
    else:
        page.text(mapping[1])
        page.table(mapping[0])
    digest = generator_hash(root, state)
    page.text(f"Synthetic generator hash: `{digest}` (`generator.json`)." if digest else
              "Generator hash: no `generator.json` in the raw dataset or the study folder (not a synthetic dataset "
              "of this version, or its workspace is not kept).")


def training_section(page, root: Path, state: dict, order: list[str], figures: Path) -> None:
    page.heading("Training curves")
    curves = {n: c for n in order if (c := curve(root, state, n)) is not None}
    if not curves:
        page.text("No arm has per-epoch records (no progress lines in `logs/train_<arm>.log`, no checkpoint).")
        return
    page.figure(fig.training_curves(curves, figures / "training_curves.png"), "training curves per arm")
    rows = []
    for name, c in curves.items():
        last = c.tail(5)
        key = "ema_pseudo_dice" if c.ema_pseudo_dice.notna().any() else "pseudo_dice"
        rows.append({"arm": name, "epochs": len(c), "last EMA pseudo-Dice": float(c[key].iloc[-1]),
                     "its change over the last 5 epochs": float(last[key].iloc[-1] - last[key].iloc[0]),
                     "best EMA pseudo-Dice": float(c[key].max())})
    page.text("Validation pseudo-Dice on nnU-Net's validation patches; a change over the last epochs well above 0 "
              "means the arm was still improving when its schedule ended.")
    page.table(pd.DataFrame(rows))
    missing = [n for n in order if n not in curves]
    if missing:
        page.text("No curve for " + ", ".join(missing) + " (not trained, or no per-epoch records).")
