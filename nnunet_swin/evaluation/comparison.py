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
from nnunet_swin.evaluation.paired_statistics import bonferroni, mcnemar_paired, model_pairs, wilcoxon_paired
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
    pair of models; ``excluded``: label -> case ids missed by every model."""

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
                   metrics=DEFAULT_METRICS) -> ComparisonResult:
    """Table 2 statistics from per-case tables of several models (as :func:`evaluate_cases` returns them)."""
    if len(per_case) < 2:
        raise UserError("comparing needs at least two prediction folders")
    penalties = dict(DEFAULT_PENALTIES if penalties is None else penalties)
    _check_penalties(penalties)
    _check_same_cases(per_case)
    models = list(per_case)
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
        for group, cases in groups(positives):
            detected = cases.pivot(index="case_id", columns="model", values="detected")[models]
            missed_all = detected.index[(detected == 0).all(axis=1)]
            included = detected.index.difference(missed_all)
            if group == ALL_CASES:
                excluded[str(label)] = sorted(missed_all)
                combined.loc[(combined["label"] == label) & combined["case_id"].isin(missed_all), "excluded"] = True
            wide = {}
            for metric in metrics:
                column = f"{metric}_penalised" if metric in penalties else metric
                wide[metric] = cases.pivot(index="case_id", columns="model", values=column).loc[included, models]
            for model in models:
                row = {"label": label, "group": group, "model": model, "n_cases": len(detected),
                       "n_included": len(included), "n_missed_by_all": len(missed_all)}
                det = detection_rate(detected[model])
                row.update({f"detection_{k}": v for k, v in det.items()})
                for metric in metrics:
                    for key, value in median_iqr(wide[metric][model]).items():
                        row[f"{metric}_{key}"] = value
                table_rows.append(row)
            pairs = model_pairs(models)
            for metric in metrics:
                tests = [wilcoxon_paired(wide[metric][a], wide[metric][b]) for a, b in pairs]
                for (a, b), test, p_adj in zip(pairs, tests, bonferroni([t["p"] for t in tests])):
                    pair_rows.append({"label": label, "group": group, "metric": metric, "model_a": a, "model_b": b,
                                      "test": "wilcoxon", **test, "p_bonferroni": p_adj})
            tests = [mcnemar_paired(detected[a], detected[b]) for a, b in pairs]
            for (a, b), test, p_adj in zip(pairs, tests, bonferroni([t["p"] for t in tests])):
                pair_rows.append({"label": label, "group": group, "metric": "detected", "model_a": a, "model_b": b,
                                  "test": "mcnemar_exact", **test, "p_bonferroni": p_adj})
    if no_reference and not table_rows:
        raise UserError(f"no reference case holds foreground of label(s) {', '.join(no_reference)}; the Table 2 "
                        "statistics need cases with a reference. Check the reference folder and --labels")
    if no_reference:
        warnings.warn(f"label(s) {', '.join(no_reference)} occur in no reference case and are left out of the "
                      "comparison", stacklevel=2)
    table, pairwise = pd.DataFrame(table_rows), pd.DataFrame(pair_rows)
    markdown = comparison_markdown(table, pairwise, excluded, metrics, penalties)
    multiclass = compare_multiclass(combined, models) if set(MEAN_COLUMNS) <= set(combined.columns) else None
    if multiclass is not None:
        markdown += "\n" + multiclass_comparison_markdown(multiclass)
    return ComparisonResult(combined, table, pairwise, excluded, markdown, multiclass=multiclass)


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


def comparison_markdown(table, pairwise, excluded, metrics, penalties) -> str:
    """Table 2-shaped Markdown: per label and group, medians [IQR] and detection, then the pairwise tests."""
    names = {m: METRIC_NAMES.get(m, m) for m in metrics}
    penalty_text = ", ".join(f"{names.get(m, m)} = {v:g}" for m, v in penalties.items() if m in names)
    parts = ["# Model comparison", ""]
    for (label, group), rows in table.groupby(["label", "group"], sort=False):
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
        tests = pairwise[(pairwise["label"] == label) & (pairwise["group"] == group)]
        header = ["Comparison"]
        for m in metrics:
            header += [f"\u0394{names[m]} (median)", "p (Bonferroni)"]
        header += ["\u0394Det. (pp)", "p (McNemar, Bonferroni)"]
        body = []
        for (a, b), pair in tests.groupby(["model_a", "model_b"], sort=False):
            cells = [f"{b} vs {a}"]
            for m in metrics:
                t = pair[pair["metric"] == m].iloc[0]
                cells += [f"{t['median_difference']:+.3f}" if np.isfinite(t["median_difference"]) else "n/a",
                          format_p(t["p_bonferroni"])]
            t = pair[pair["metric"] == "detected"].iloc[0]
            cells += [f"{t['difference_pp']:+.1f}" if np.isfinite(t["difference_pp"]) else "n/a",
                      format_p(t["p_bonferroni"])]
            body.append(cells)
        parts += [markdown_table(header, body), ""]
        if group == ALL_CASES:
            missed = excluded.get(str(label), [])
            parts += [f"Cases missed by every model (left out of the continuous metrics): "
                      f"{', '.join(missed) if missed else 'none'}", ""]
    parts += ["Wilcoxon signed-rank (two-sided, zero differences dropped) for the continuous metrics, McNemar's exact "
              "test on discordant detections. Every p-value shown is Bonferroni-adjusted over the model pairs within "
              "its metric (column `p_bonferroni` of the CSV and JSON; the unadjusted value is column `p`).", ""]
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
                    penalties: dict | None = None, figures: bool = True, **evaluation_options) -> ComparisonResult:
    """Evaluate several prediction folders on one reference folder and compare them (Table 2 protocol).

    prediction_folders: a list of folders (``names`` labels them; default the folder names) or a dict
    name -> folder. penalties: metric -> value for a model's missed case (default sDSC 0.1, VR 10).
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
    _check_penalties(dict(DEFAULT_PENALTIES if penalties is None else penalties))
    out = check_output_folder(output_folder)
    per_case = {}
    for name, folder in named.items():
        per_case[name], _ = evaluate_cases(reference_folder, folder, **evaluation_options)
    metrics = list(DEFAULT_METRICS) + (["hd95"] if evaluation_options.get("hd95") else [])
    result = compare_tables(per_case, penalties=penalties, metrics=metrics)
    with writing_into(out):  # the old comparison goes first; the marker (comparison.json) comes last
        _write_comparison(out, result, figures, metrics, {
            "settings": {"reference_folder": str(reference_folder),
                         "prediction_folders": {k: str(v) for k, v in named.items()},
                         "evaluation_options": evaluation_options,
                         "penalties": dict(DEFAULT_PENALTIES if penalties is None else penalties)},
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
