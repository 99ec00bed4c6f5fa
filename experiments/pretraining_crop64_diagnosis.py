"""Why SMART collapses at crop 64 (issue 22): the collapse monitor's per-step history of short runs that change one
setting each, against the recorded ``smart_crop64`` run.

    python experiments/pretraining_crop64_diagnosis.py --runs RUN_FOLDER [RUN_FOLDER ...] \
        --output experiments/results/pretraining_acceptance

Every run: ``experiments/pretraining_acceptance.py run --corpus varied --method smart -- --crop 64 --epochs 10``
plus the one changed setting (``CHANGED`` below), stopped by hand once the monitor's numbers had settled (a run's
steps are in the table). Per run, from ``losses.json`` (the history, one row per step): the means over the last
complete epoch of ITD / CTD, the teacher entropy, the teacher logit std over the batch, the student cross-sample
cosine and the class-attention entropy; the teacher logit std at step 1; the first step at which the student
cosine (ITD) reached 0.999; the first collapse warning (epoch, step) from ``pretrain_log.txt``; the means over steps 16-20 (every run has them)
of the teacher entropy, logit std and cosine (ITD); at crop 64, the largest ITD gap to ``smart_crop64`` over the
first 20 steps (about 1e-4 means the run followed the recorded one step for step). Writes
``crop64_diagnosis.json`` and ``crop64_diagnosis.md`` (no absolute paths).
"""
from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

CHANGED = {
    "smart_crop64": "none (the recorded run)",
    "smart_varied": "crop 32, 400 steps (the recorded run)",
    "d_crop32_200": "crop 32 (200-step schedule)",
    "c_ramps_x2": "ramps twice as long in steps (lr warmup 16, temperature 24, patch 24 + 24: crop 32's)",
    "a_lr_half": "--lr-per-sample 2.5e-4 (peak lr 5e-4)",
    "e_ibot": "--masking ibot (ignored by SMART's guided masks before the fix: same masks)",
    "b_maskblock32": "--mask-block 32 (8 blocks per view, as at crop 32)",
    "f_nomip": "--w-mip 0 (no reconstruction)",
    "g_noise_none": "--teacher-noise none",
    "h_teacher_temp_half": "--teacher-temp 0.02 0.035 (half SMIT's)",
    "j_ibot_fixed": "--masking ibot, with SMART's guided masks following it (after the fix)",
    "i_batch4": "--batch-size 4 --lr-per-sample 2.5e-4 (4 volumes per step, same peak lr 1e-3)",
}


def summarise_run(folder: Path) -> dict:
    import numpy as np

    from nnunet_swin.io import read_json
    record = read_json(folder / "losses.json", "pretraining history")
    h = record["history"]
    ln_k = math.log(record["config"]["out_dim"])
    per_epoch = {}
    for r in h:
        per_epoch.setdefault(r["epoch"], []).append(r)
    complete = [e for e, rows in per_epoch.items() if len(rows) == record["config"]["iterations_per_epoch"]]
    last = max(complete) if complete else max(per_epoch)
    rows = per_epoch[last]
    keys = ["itd", "ctd", "teacher_entropy_itd", "teacher_entropy_ctd", "logit_std_itd", "logit_std_ctd",
            "cosine_itd", "cosine_ctd", "class_attention_entropy"]
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys if all(r.get(k) is not None for r in rows)}
    cos_step = next((i + 1 for i, r in enumerate(h) if r["cosine_itd"] >= 0.999), None)
    warning = None
    log = folder / "pretrain_log.txt"
    if log.is_file():
        m = re.search(r"warning: distillation collapsed in epoch (\d+)", log.read_text())
        if m:
            warning = {"epoch": int(m.group(1)), "step": int(m.group(1)) * record["config"]["iterations_per_epoch"]}
    window = [r for r in h[15:20]]
    early = {k: float(np.mean([r[k] for r in window])) for k in ("teacher_entropy_itd", "logit_std_itd", "cosine_itd")}
    return {"changed": CHANGED.get(folder.name, "?"), "steps_16_20": early, "itd_per_step": [r["itd"] for r in h], "crop": record["config"]["crop"], "steps_run": len(h),
            "steps_planned": record["config"]["epochs"] * record["config"]["iterations_per_epoch"],
            "summary_epoch": last + 1, "ln_k": ln_k, "means": means,
            "logit_std_itd_step1": h[0]["logit_std_itd"], "logit_std_ctd_step1": h[0]["logit_std_ctd"],
            "first_step_cosine_itd_0999": cos_step, "collapse_warning": warning}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--output", type=Path, required=True)
    a = p.parse_args(argv)
    from nnunet_swin.io import write_json, write_text
    out = {f.name: summarise_run(f) for f in a.runs}
    ref = out.get("smart_crop64", {}).get("itd_per_step")
    for r in out.values():
        n = min(len(r["itd_per_step"]), 20)
        r["max_itd_gap_to_smart_crop64_first_steps"] = (
            max(abs(x - y) for x, y in zip(r["itd_per_step"][:n], ref[:n])) if ref and r["crop"] == 64 else None)
        del r["itd_per_step"]
    write_json(a.output / "crop64_diagnosis.json", out)
    lines = ["| run | changed (vs smart_crop64) | crop | steps run / planned | epoch summarised | ITD / CTD | "
             "teacher entropy ITD / CTD | logit std ITD / CTD | student cosine ITD / CTD | class-attention entropy | "
             "logit std ITD at step 1 | steps 16-20: teacher entropy ITD / logit std ITD / cosine ITD | max abs ITD gap to "
             "smart_crop64, first 20 steps | first step cosine ITD >= 0.999 | collapse warning |", "|" + "---|" * 15]
    for name, r in out.items():
        m = r["means"]

        def f(*ks, fmt="{:.4f}"):
            return " / ".join(fmt.format(m[k]) if k in m else "-" for k in ks)
        w, e, gap = r["collapse_warning"], r["steps_16_20"], r["max_itd_gap_to_smart_crop64_first_steps"]
        lines.append(f"| {name} | {r['changed']} | {r['crop']} | {r['steps_run']} / {r['steps_planned']} | "
                     f"{r['summary_epoch']} | {f('itd', 'ctd')} | {f('teacher_entropy_itd', 'teacher_entropy_ctd')} | "
                     f"{f('logit_std_itd', 'logit_std_ctd')} | {f('cosine_itd', 'cosine_ctd')} | "
                     f"{f('class_attention_entropy')} | {r['logit_std_itd_step1']:.4f} | "
                     f"{e['teacher_entropy_itd']:.4f} / {e['logit_std_itd']:.4f} / {e['cosine_itd']:.4f} | "
                     + (f"{gap:.4f}" if gap is not None else "-") + " | "
                     f"{r['first_step_cosine_itd_0999'] or 'never'} | "
                     + (f"epoch {w['epoch']} (step {w['step']})" if w else "none") + " |")
    write_text(a.output / "crop64_diagnosis.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
