"""Several models (or configurations) on the same cases: the paper's Table 2 protocol.

Per label, over the cases with a non-empty reference:
- detection rate of each model over all those cases, with a Wilson 95% CI;
- continuous metrics (sDSC, VR, Dice) as median [IQR] after bounded penalties for a model's missed cases
  (sDSC = 0.1, VR = 10 by default) and leaving out the cases that every model missed;
- Wilcoxon signed-rank tests between every pair of models; detection differences in percentage points with exact
  McNemar tests. One p-value convention everywhere: Bonferroni over the model pairs within a metric
  (``p_bonferroni``; ``p`` is kept, unadjusted, in the tables).
Everything is repeated per appearance subtype when the per-case tables carry a ``subtype`` column.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nnunet_swin.errors import UserError
from nnunet_swin.evaluation.detection import detection_rate
from nnunet_swin.evaluation.folder_evaluation import evaluate_cases
from nnunet_swin.evaluation.multiclass import MEAN_COLUMNS
from nnunet_swin.evaluation.families import ALL_ARMS, Family, present_arms
from nnunet_swin.evaluation.paired_statistics import (bonferroni, mcnemar_paired, min_attainable_adjusted, model_pairs,
                                                       wilcoxon_paired)
from nnunet_swin.evaluation.reports import format_median_iqr, format_p, format_rate, markdown_table
from nnunet_swin.evaluation.summary import ALL_CASES, METRIC_NAMES, groups, median_iqr
from nnunet_swin.evaluation.result_sets import check_output_folder, clear_result_set, writing_into
from nnunet_swin.io import save_figure, write_csv, write_json, write_text

DEFAULT_PENALTIES = {"surface_dice": 0.1, "volume_ratio": 10.0}
DEFAULT_METRICS = ("surface_dice", "volume_ratio", "dice")


@dataclass
class ComparisonResult:
    """``per_case``: long table (model, case, label) with raw and penalised metrics and the exclusion flag;
    ``table``: one row per label / group / model (Table 2); ``pairwise``: one row per label / group / metric /
    pair of models (both with a ``family`` column); ``excluded``: family -> label -> case ids missed by every arm of
    the family. ``per_case['excluded']`` marks the cases missed by every model passed."""

    per_case: pd.DataFrame
    table: pd.DataFrame
    pairwise: pd.DataFrame
    excluded: dict[str, list[str]]
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)
    multiclass: pd.DataFrame | None = None   # mIoU / mDice / mAcc per group and model, then their paired tests


def _check_same_cases(per_case: dict[str, pd.DataFrame]) -> None:
    keys = {name: set(zip(df["case_id"], df["label"])) for name, df in per_case.items()}
    first_name, first = next(iter(keys.items()))
    for name, k in keys.items():
        if k != first:
            diff = sorted(k ^ first)[:3]
            raise UserError(f"models {first_name!r} and {name!r} were evaluated on different cases "
                            f"(e.g. {diff}); compare folders predicted for the same reference cases")


def _check_penalties(penalties: dict) -> None:
    """Finite penalties inside the metric's range (a NaN penalty would turn every missed case into n/a)."""
    for metric, value in penalties.items():
        ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
        if metric == "surface_dice":
            ok = ok and value <= 1
        if not ok:
            flag = "--missed-" + metric.replace("_", "-")
            raise UserError(f"penalty for a missed case's {metric} must be a finite number"
                            f"{' in [0, 1]' if metric == 'surface_dice' else ' >= 0'}, got {value} ({flag})")


def compare_tables(per_case: dict[str, pd.DataFrame], *, penalties: dict | None = None,
                   metrics=DEFAULT_METRICS, families: list[Family] | None = None) -> ComparisonResult:
    """Table 2 statistics from per-case tables of several models (as :func:`evaluate_cases` returns them).

    families: the pre-specified families of comparisons (:mod:`families`); each gets its own exclusion set (cases
    missed by all its arms), medians, pairwise tests and Bonferroni over its own pairs. A family's arms that are
    not among the models are left out (its m stays the pre-specified one); a family with fewer than two present
    arms is skipped. Default: all models form one family (``"all arms"``).
    """
    if len(per_case) < 2:
        raise UserError("comparing needs at least two prediction folders")
    penalties = dict(DEFAULT_PENALTIES if penalties is None else penalties)
    _check_penalties(penalties)
    _check_same_cases(per_case)
    models = list(per_case)
    if families is None:
        families = [Family(ALL_ARMS, tuple(models))]
    if len({f.name for f in families}) != len(families):
        raise UserError(f"a family is named twice: {', '.join(f.name for f in families)}; give each --family once")
    runnable = [(f, present_arms(f, models)) for f in families]
    runnable = [(f, arms) for f, arms in runnable if len(arms) >= 2]
    if not runnable:
        raise UserError(f"no family has two of its arms among the models {', '.join(models)}; name the folders "
                        f"after the family's arms (--names) or pick another --family")
    combined = pd.concat([df.assign(model=name) for name, df in per_case.items()], ignore_index=True)
    metrics = [m for m in metrics if m in combined.columns and combined[m].notna().any()]
    for metric, value in penalties.items():
        if metric in combined.columns:
            combined[f"{metric}_penalised"] = combined[metric].where(combined["detected"] != 0, value)
    combined["excluded"] = False
    table_rows, pair_rows, excluded, no_reference = [], [], {}, []
    for label, rows in combined.groupby("label", sort=False):
        positives = rows[~rows["ref_empty"].astype(bool)]
        if positives.empty:  # no case has this label in its reference: nothing to compare
            no_reference.append(str(label))
            continue
        flags = positives.pivot(index="case_id", columns="model", values="detected")[models]
        missed_by_every_model = flags.index[(flags == 0).all(axis=1)]
        combined.loc[(combined["label"] == label) & combined["case_id"].isin(missed_by_every_model), "excluded"] = True
        for family, arms in runnable:
            excluded.setdefault(family.name, {})
            for group, cases in groups(positives[positives["model"].isin(arms)]):
                rows_t, rows_p, missed_all = _family_rows(cases, label, group, family, arms, metrics, penalties)
                table_rows += rows_t
                pair_rows += rows_p
                if group == ALL_CASES:
                    excluded[family.name][str(label)] = sorted(missed_all)
    if no_reference and not table_rows:
        raise UserError(f"no reference case holds foreground of label(s) {', '.join(no_reference)}; the Table 2 "
                        "statistics need cases with a reference. Check the reference folder and --labels")
    if no_reference:
        warnings.warn(f"label(s) {', '.join(no_reference)} occur in no reference case and are left out of the "
                      "comparison", stacklevel=2)
    table, pairwise = pd.DataFrame(table_rows), pd.DataFrame(pair_rows)
    markdown = comparison_markdown(table, pairwise, excluded, metrics, penalties, [f for f, _ in runnable])
    multiclass = compare_multiclass(combined, models) if set(MEAN_COLUMNS) <= set(combined.columns) else None
    if multiclass is not None:
        markdown += "\n" + multiclass_comparison_markdown(multiclass)
    return ComparisonResult(combined, table, pairwise, excluded, markdown, multiclass=multiclass)


def _family_rows(cases, label, group, family: Family, arms, metrics, penalties):
    """One family on one label and group: its summary rows, its pairwise tests (Bonferroni over the family's m) and
    the cases every arm of it missed."""
    detected = cases.pivot(index="case_id", columns="model", values="detected")[arms]
    missed_all = detected.index[(detected == 0).all(axis=1)]
    included = detected.index.difference(missed_all)
    wide = {}
    for metric in metrics:
        column = f"{metric}_penalised" if metric in penalties else metric
        wide[metric] = cases.pivot(index="case_id", columns="model", values=column).loc[included, arms]
    table_rows, pair_rows = [], []
    for model in arms:
        row = {"family": family.name, "label": label, "group": group, "model": model, "n_cases": len(detected),
               "n_included": len(included), "n_missed_by_all": len(missed_all)}
        row.update({f"detection_{k}": v for k, v in detection_rate(detected[model]).items()})
        for metric in metrics:
            for key, value in median_iqr(wide[metric][model]).items():
                row[f"{metric}_{key}"] = value
        table_rows.append(row)
    pairs = model_pairs(arms)
    m = family.m
    runs = [(metric, "wilcoxon", [wilcoxon_paired(wide[metric][a], wide[metric][b]) for a, b in pairs])
            for metric in metrics]
    runs.append(("detected", "mcnemar_exact", [mcnemar_paired(detected[a], detected[b]) for a, b in pairs]))
    for metric, test_name, tests in runs:
        for (a, b), test, p_adj in zip(pairs, tests, bonferroni([t["p"] for t in tests], m=m)):
            pair_rows.append({"family": family.name, "label": label, "group": group, "metric": metric,
                              "model_a": a, "model_b": b, "test": test_name, **test, "m": m, "p_bonferroni": p_adj,
                              "min_attainable_p_bonferroni": min_attainable_adjusted(test["min_attainable_p"], m)})
    return table_rows, pair_rows, missed_all


def compare_multiclass(combined: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Per group: each model's mIoU / mDice / mAcc (median [IQR] over cases, no penalties: a missed class scores 0
    already), then Wilcoxon between every pair, Bonferroni within each score. One row per (group, score, model) with
    ``kind = "summary"`` and per (group, score, pair) with ``kind = "test"``."""
    rows = []
    cases = combined.drop_duplicates(["model", "case_id"])
    for group, group_cases in groups(cases):
        for score in MEAN_COLUMNS:
            wide = group_cases.pivot(index="case_id", columns="model", values=score)[models]
            for model in models:
                rows.append({"group": group, "score": score, "kind": "summary", "model": model,
                             **median_iqr(wide[model])})
            pairs = model_pairs(models)
            tests = [wilcoxon_paired(wide[a], wide[b]) for a, b in pairs]
            for (a, b), test, p_adj in zip(pairs, tests, bonferroni([t["p"] for t in tests])):
                rows.append({"group": group, "score": score, "kind": "test", "model_a": a, "model_b": b, **test,
                             "p_bonferroni": p_adj})
    return pd.DataFrame(rows)


def multiclass_comparison_markdown(multiclass: pd.DataFrame) -> str:
    parts = ["## Multi-class scores (background excluded)", ""]
    for group, rows in multiclass.groupby("group", sort=False):
        summary = rows[rows["kind"] == "summary"]
        models = list(dict.fromkeys(summary["model"]))
        body = [[m] + [format_median_iqr(summary[(summary["model"] == m) & (summary["score"] == sc)].iloc[0])
                       for sc in MEAN_COLUMNS] for m in models]
        parts += [f"### {'all cases' if group == ALL_CASES else f'subtype {group}'}", "",
                  markdown_table(["Model", *MEAN_COLUMNS], body), ""]
        tests = rows[rows["kind"] == "test"]
        body = [[f"{b} vs {a}"] + [format_p(tests[(tests["model_a"] == a) & (tests["model_b"] == b)
                                                  & (tests["score"] == sc)].iloc[0]["p_bonferroni"])
                                   for sc in MEAN_COLUMNS]
                for (a, b) in dict.fromkeys(zip(tests["model_a"], tests["model_b"]))]
        parts += [markdown_table(["Comparison", *(f"p {sc} (Bonferroni)" for sc in MEAN_COLUMNS)], body), ""]
    return "\n".join(parts)


def _stats_from_row(row, metric) -> dict:
    return {k: row[f"{metric}_{k}"] for k in ("median", "q1", "q3", "n")}


def format_estimate(test, digits: int = 3, unit: str = "") -> str:
    """``+0.050 [-0.100, +0.200] 96.9%``: a paired estimate with its interval and the interval's achieved level."""
    est = test.get("difference_pp") if unit == "pp" else test.get("estimate")
    if est is None or not np.isfinite(est):
        return "n/a"
    fmt = f"+.{1 if unit == 'pp' else digits}f"
    low, high, level = test.get("ci_low"), test.get("ci_high"), test.get("ci_level")
    if low is None or not np.isfinite(low):
        return f"{est:{fmt}}"
    return f"{est:{fmt}} [{low:{fmt}}, {high:{fmt}}] {100 * level:.1f}%"


def comparison_markdown(table, pairwise, excluded, metrics, penalties, families=None) -> str:
    """Table 2-shaped Markdown per family, label and group: medians [IQR] and detection, then the pairwise tests
    (Hodges-Lehmann estimate with its interval, the non-zero pairs n_eff, p Bonferroni-adjusted within the family
    and the smallest adjusted p the family can attain)."""
    names = {m: METRIC_NAMES.get(m, m) for m in metrics}
    penalty_text = ", ".join(f"{names.get(m, m)} = {v:g}" for m, v in penalties.items() if m in names)
    families = families or [Family(ALL_ARMS, tuple(dict.fromkeys(table["model"])))]
    parts = ["# Model comparison", ""]
    for family in families:
        if family.name != ALL_ARMS:
            absent = [a for a in family.arms if a not in set(table["model"])]
            parts += [f"# Family {family.name}: {', '.join(family.arms)}", "",
                      (family.description + ". " if family.description else "")
                      + f"Bonferroni over its {family.m} pre-specified pair(s) within each metric; cases missed by "
                        "all its arms left out of the continuous metrics."
                      + (f" Not run: {', '.join(absent)} (the correction keeps m = {family.m})." if absent else ""),
                      ""]
        for (label, group), rows in table[table["family"] == family.name].groupby(["label", "group"], sort=False):
            first = rows.iloc[0]
            parts += [f"## Label {label}, {'all cases' if group == ALL_CASES else f'subtype {group}'}", "",
                      f"Detection rate over all {first['n_cases']} cases with a reference (Wilson 95% CI). "
                      f"{', '.join(names.values())} as median [IQR] over {first['n_included']} cases, leaving out "
                      f"{first['n_missed_by_all']} missed by every model; individual misses penalised "
                      f"({penalty_text or 'none'}).", ""]
            body = [[r["model"]] + [format_median_iqr(_stats_from_row(r, m)) for m in metrics]
                    + [format_rate({k: r[f"detection_{k}"] for k in ("detected", "n", "rate", "ci_low", "ci_high")})]
                    for _, r in rows.iterrows()]
            parts += [markdown_table(["Model"] + list(names.values()) + ["Det. rate"], body), ""]
            tests = pairwise[(pairwise["family"] == family.name) & (pairwise["label"] == label)
                             & (pairwise["group"] == group)]
            header = ["Comparison"]
            for m in metrics:
                header += [f"\u0394{names[m]} HL [CI]", f"n_eff {names[m]}", "p (Bonferroni)"]
            header += ["\u0394Det. (pp) [CI]", "b / c", "p (McNemar, Bonferroni)", "smallest p (Bonferroni)"]
            body = []
            for (a, b), pair in tests.groupby(["model_a", "model_b"], sort=False):
                cells = [f"{b} vs {a}"]
                floors = []
                for m in metrics:
                    t = pair[pair["metric"] == m].iloc[0]
                    cells += [format_estimate(t), str(int(t["n_eff"])), format_p(t["p_bonferroni"])]
                    floors.append(t["min_attainable_p_bonferroni"])
                t = pair[pair["metric"] == "detected"].iloc[0]
                cells += [format_estimate(t, unit="pp"), f"{int(t['b'])} / {int(t['c'])}",
                          format_p(t["p_bonferroni"])]
                floors = [f for f in floors if np.isfinite(f)]
                cells.append(f"{min(floors):.3g}" if floors else "n/a")
                body.append(cells)
            parts += [markdown_table(header, body), ""]
            if group == ALL_CASES:
                missed = excluded.get(family.name, {}).get(str(label), [])
                parts += [f"Cases missed by every model (left out of the continuous metrics): "
                          f"{', '.join(missed) if missed else 'none'}", ""]
    parts += ["Wilcoxon signed-rank (two-sided, zero differences dropped: n_eff counts the non-zero pairs; exact up "
              "to 50 pairs, mid-ranks for ties) for the continuous metrics, with the Hodges-Lehmann estimate and its "
              "signed-rank interval at the achieved level shown; McNemar's exact test on the discordant detections "
              "b (only the first model) and c (only the second), with Newcombe's interval. Every p-value shown is "
              "Bonferroni-adjusted over the pairs of its family within its metric (column `p_bonferroni` of the CSV "
              "and JSON; the unadjusted value is column `p`). The last column is the smallest adjusted p the "
              "comparison could have reached with its n_eff (column `min_attainable_p_bonferroni`): above 0.05, no "
              "outcome could have been significant.", ""]
    return "\n".join(parts)


def comparison_figures(result: ComparisonResult, metrics) -> dict:
    """One boxplot per metric and label (all cases, penalised values, excluded cases left out): name -> Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    data = result.per_case[~result.per_case["ref_empty"].astype(bool) & ~result.per_case["excluded"]]
    models = list(dict.fromkeys(result.per_case["model"]))
    labels = list(dict.fromkeys(data["label"]))
    for label in labels:
        for metric in metrics:
            column = f"{metric}_penalised" if f"{metric}_penalised" in data else metric
            rows = data[data["label"] == label]
            values = [rows.loc[rows["model"] == m, column].dropna().to_numpy() for m in models]
            fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(models), 3.6))
            ax.boxplot(values, showfliers=True)
            ax.set_xticks(range(1, len(models) + 1), models, rotation=20, ha="right")
            ax.set_ylabel(METRIC_NAMES.get(metric, metric))
            ax.set_title(f"label {label}")
            if metric == "volume_ratio":
                ax.set_yscale("log")
            suffix = "" if len(labels) == 1 else f"_label{str(label).strip('()').replace(', ', '-')}"
            figures[f"comparison_{metric}{suffix}.png"] = fig
    return figures


def compare_folders(reference_folder, prediction_folders, output_folder, *, names=None,
                    penalties: dict | None = None, figures: bool = True, families: list[Family] | None = None,
                    **evaluation_options) -> ComparisonResult:
    """Evaluate several prediction folders on one reference folder and compare them (Table 2 protocol).

    prediction_folders: a list of folders (``names`` labels them; default the folder names) or a dict
    name -> folder. penalties: metric -> value for a model's missed case (default sDSC 0.1, VR 10). families: the
    pre-specified families (:mod:`families`; each arm must be a model name), default all models as one family.
    Writes ``comparison_per_case.csv``, ``comparison_table.csv``, ``comparison_pairwise.csv``,
    ``comparison.md``, ``comparison.json`` and, with ``figures``, one boxplot PNG per metric into output_folder.
    evaluation_options: the keyword arguments of :func:`nnunet_swin.evaluation.evaluate_cases` (labels,
    tolerance_mm, detection_threshold, crop_depth, subtypes_csv, hd95, ...), the same for every folder.
    """
    if isinstance(prediction_folders, dict):
        named = dict(prediction_folders)
    else:
        folders_list = [Path(p) for p in prediction_folders]
        if names is None:
            names = [p.name or str(p) for p in folders_list]
        if len(names) != len(folders_list):
            raise UserError(f"{len(names)} names for {len(folders_list)} prediction folders; give one name each")
        if len(set(names)) != len(names):
            raise UserError(f"model names must be unique, got {list(names)}; pass --names")
        named = dict(zip(names, folders_list))
    if len(named) < 2:
        raise UserError("comparing needs at least two prediction folders")
    for family in families or []:
        if len(present_arms(family, named)) < 2:
            raise UserError(f"family {family.name} ({', '.join(family.arms)}) has fewer than two of its arms among "
                            f"the models {', '.join(named)}; name the folders after its arms with --names or drop "
                            f"--family {family.name}")
    _check_penalties(dict(DEFAULT_PENALTIES if penalties is None else penalties))
    out = check_output_folder(output_folder)
    per_case = {}
    for name, folder in named.items():
        per_case[name], _ = evaluate_cases(reference_folder, folder, **evaluation_options)
    metrics = list(DEFAULT_METRICS) + (["hd95"] if evaluation_options.get("hd95") else [])
    result = compare_tables(per_case, penalties=penalties, metrics=metrics, families=families)
    with writing_into(out):  # the old comparison goes first; the marker (comparison.json) comes last
        _write_comparison(out, result, figures, metrics, {
            "settings": {"reference_folder": str(reference_folder),
                         "prediction_folders": {k: str(v) for k, v in named.items()},
                         "evaluation_options": evaluation_options,
                         "penalties": dict(DEFAULT_PENALTIES if penalties is None else penalties),
                         "families": {f.name: list(f.arms) for f in families} if families else None},
            "excluded_cases": result.excluded,
            "table": result.table.to_dict(orient="records"),
            "pairwise": result.pairwise.to_dict(orient="records"),
        })
    return result


COMPARISON_MARKER = "comparison.json"
COMPARISON_FILES = ("comparison_*.csv", "comparison_*.png", "comparison.md")


def _write_comparison(out: Path, result: ComparisonResult, figures: bool, metrics, marker: dict) -> None:
    clear_result_set(out, COMPARISON_MARKER, COMPARISON_FILES)
    files = {
        "per_case_csv": write_csv(out / "comparison_per_case.csv", result.per_case),
        "table_csv": write_csv(out / "comparison_table.csv", result.table),
        "pairwise_csv": write_csv(out / "comparison_pairwise.csv", result.pairwise),
    }
    if result.multiclass is not None:
        files["multiclass_csv"] = write_csv(out / "comparison_multiclass.csv", result.multiclass)
        marker["multiclass"] = result.multiclass.to_dict(orient="records")
    if figures:
        for filename, fig in comparison_figures(result, [m for m in metrics if m in result.per_case]).items():
            files[filename] = save_figure(out / filename, fig)
    files["markdown"] = write_text(out / "comparison.md", result.markdown)
    files["json"] = write_json(out / COMPARISON_MARKER, marker)
    result.files = files
