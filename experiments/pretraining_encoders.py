"""The encoders the downstream experiments compare, as checkpoints the fine-tuning path loads.

From one ``nnunet-swin pretrain`` run's ``checkpoint_final.pth``:

- ``student.pth`` and ``teacher.pth``: that run's student and EMA-teacher encoders (both are kept in the checkpoint's
  ``pretraining`` block, whichever one the export rule chose);
- ``random_seed<s>.pth``: the same layout freshly initialised exactly as ``nnunet-swin pretrain --seed s`` initialises
  it (``torch.manual_seed(s)`` then ``build_pair`` with the run's settings). Seed = the run's own seed gives the very
  weights the run started from, so student/teacher minus ``random_seed<run seed>`` is what the training changed.

All files carry the run's metadata (spacing, intensity, merge order) with ``encoder_loaded`` and ``encoder_rule`` set
to what the file holds, so the trainers treat every arm alike and the load report says which arm it is.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

ARMS = ("student", "teacher")


def random_encoder_state(config: dict, seed: int) -> dict[str, torch.Tensor]:
    from nnunet_swin.networks.presets import get_preset
    from nnunet_swin.pretraining.model import build_pair, encoder_state
    torch.manual_seed(seed)
    student, _ = build_pair(get_preset(config["backbone"]), config["method"], out_dim=config["out_dim"],
                            head_hidden=config["head_hidden"], head_bottleneck=config["head_bottleneck"],
                            class_attention_heads=config.get("class_attention_heads"),
                            drop_path_rate=config.get("drop_path"),
                            norm_class_query=config.get("norm_class_query", True))
    return encoder_state(student)


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return float(torch.sqrt(sum(((a[k].float() - b[k].float()) ** 2).sum() for k in a)))


def encoder_checkpoints(final: Path, folder: Path, seeds: list[int]) -> dict[str, Path]:
    """Write (once) and return ``{arm: path}`` for student, teacher and ``random_seed<s>`` per seed."""
    from nnunet_swin.io import save_checkpoint
    from nnunet_swin.networks.weights.metadata import ADAPTATION_PLAN_KEY, adaptation_plan
    from nnunet_swin.networks.weights import read_checkpoint
    folder.mkdir(parents=True, exist_ok=True)
    names = list(ARMS) + [f"random_seed{s}" for s in seeds]
    paths = {n: folder / f"{n}.pth" for n in names}
    if all(p.is_file() for p in paths.values()):
        return paths
    obj = read_checkpoint(final)
    config, meta = obj["pretraining"]["config"], obj["metadata"]
    states = {arm: {k: v for k, v in obj["pretraining"][arm].items() if k.startswith("encoder.")} for arm in ARMS}
    init = random_encoder_state(config, config["seed"])
    moved = distance(states["student"], init)
    recorded = meta["distance_from_init"]["student"]
    if abs(moved - recorded) > 1e-3 * max(1.0, recorded):      # the run's own init must be reproduced exactly
        raise RuntimeError(f"random_seed{config['seed']} is not the run's initialisation: the student is {moved:.4f} "
                           f"from it, the run recorded {recorded:.4f}")
    for s in seeds:
        states[f"random_seed{s}"] = init if s == config["seed"] else random_encoder_state(config, s)
    for name in names:
        m = copy.deepcopy(meta)
        if name in ARMS:
            m["encoder_loaded"], m["encoder_rule"] = name, f"the run's {name} encoder (downstream experiment arm)"
        else:
            m.update(encoder_loaded="student", steps=0, epochs_completed=0, monitor={}, teacher_init_share=1.0,
                     encoder_rule=f"random initialisation of the same layout, seed {name.rsplit('seed', 1)[1]} "
                                  f"(downstream experiment arm; not pretrained)")
        save_checkpoint(paths[name], {"student": states[name], "metadata": m, ADAPTATION_PLAN_KEY: adaptation_plan(m)})
    return paths


VERDICT_YES = "pretrained minus random larger than twice the seed standard deviation"


def downstream_statistics(table, arm: str, random_arm: str = "random") -> dict:
    """``arm`` against ``random_arm`` on a long table with columns arm, seed, unit (held-out volume or case), value.

    Seed level: each arm's mean over units per seed; the seed standard deviation is the larger of the two arms' (an
    arm with one seed, e.g. a deterministic probe of one pretraining run, contributes 0). Verdict: the difference of
    the arms' means over seeds against twice that standard deviation. Unit level: per unit the mean over seeds, paired
    differences (arm - random) through the project's exact signed-rank test and Hodges-Lehmann interval
    (``nnunet_swin.evaluation.paired_statistics``), with n, n_eff and the smallest attainable p."""
    from nnunet_swin.evaluation.paired_statistics import hodges_lehmann, signed_rank_test
    per_seed = {a: table[table.arm == a].groupby("seed").value.mean() for a in (arm, random_arm)}
    sds = [float(s.std(ddof=1)) if len(s) > 1 else 0.0 for s in per_seed.values()]
    seed_sd = max(sds)
    diff = float(per_seed[arm].mean() - per_seed[random_arm].mean())
    units = {a: table[table.arm == a].groupby("unit").value.mean() for a in (arm, random_arm)}
    d = (units[arm] - units[random_arm]).dropna().to_numpy(dtype=float)
    test, hl = signed_rank_test(d), hodges_lehmann(d)
    return {"arm": arm, "reference": random_arm, "mean": float(per_seed[arm].mean()),
            "reference_mean": float(per_seed[random_arm].mean()),
            "per_seed": {str(k): round(float(v), 4) for k, v in per_seed[arm].items()},
            "reference_per_seed": {str(k): round(float(v), 4) for k, v in per_seed[random_arm].items()},
            "seed_sd": seed_sd, "seed_sd_arm": sds[0], "seed_sd_reference": sds[1], "difference": diff,
            "verdict": "not evaluable: one seed of the random arm" if len(per_seed[random_arm]) < 2 else
            VERDICT_YES if diff > 2 * seed_sd else "not shown" + (
                " (pretrained below random by more than twice the seed standard deviation)"
                if diff < -2 * seed_sd else ""),
            "n": test["n"], "n_eff": test["n_eff"], "p": test["p"], "test": f"signed-rank ({test['method']})",
            "min_attainable_p": test["min_attainable_p"], "hl_estimate": hl["estimate"],
            "ci_low": hl["ci_low"], "ci_high": hl["ci_high"], "ci_level": hl["ci_level"]}


def statistics_table(stats: list[dict], label: str) -> list[str]:
    lines = [f"| {label} | arm | arm mean (per seed) | random mean (per seed) | seed sd | arm - random | verdict | "
             "n (n_eff) | signed-rank p | smallest attainable p | HL estimate [CI, achieved level] |",
             "|" + "---|" * 11]
    for s in stats:
        per = ", ".join(f"{v:.4f}" for v in s["per_seed"].values())
        ref = ", ".join(f"{v:.4f}" for v in s["reference_per_seed"].values())
        lines.append(f"| {s.get('label', '')} | {s['arm']} | {s['mean']:.4f} ({per}) | {s['reference_mean']:.4f} "
                     f"({ref}) | {s['seed_sd']:.4f} | {s['difference']:+.4f} | {s['verdict']} | {s['n']} "
                     f"({s['n_eff']}) | {s['p']:.3g} | {s['min_attainable_p']:.3g} | {s['hl_estimate']:+.4f} "
                     f"[{s['ci_low']:+.4f}, {s['ci_high']:+.4f}, {100 * s['ci_level']:.1f}%] |")
    return lines
