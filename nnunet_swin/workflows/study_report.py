"""The study's report: ``report.md`` and a self-contained ``report.html`` from the files our commands wrote.

It leads with the answer: one row per paper finding with the paper's number, ours with its interval, n_eff, the
smallest attainable p and a coloured verdict (``study_findings``, also written to ``findings.json``); then the design
(``study_design``: cases per subtype, pf histogram, steps per arm, seeds, stage mapping, generator hash), paired
per-case plots, training curves, ADI at the stage comparable with the paper's stage 3 against pf, CKA per block with
its random-initialisation floor; then the arms, Table 2 (its pairwise tests collapsed), cost, subtypes, steps, and
an appendix (CKA heatmaps, the ADI step's own figures). Figures the report draws go to ``figures/`` (matplotlib,
``study_figures``). Every section says why when its source is absent. The HTML page inlines every figure as a base64
PNG data URI and links nothing outside itself; every path in both files is relative to the study folder.

``write_report(root)`` rebuilds both from the study folder's files alone (``study.json`` and the step outputs), so a
recorded study can be re-reported without its nnU-Net folders.
"""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from nnunet_swin.evaluation.families import PAPER_FAMILIES
from nnunet_swin.io import write_json, write_text
from nnunet_swin.workflows.study_comparisons import comparison_tables
from nnunet_swin.workflows.study_design import design_section, training_section
from nnunet_swin.workflows.study_evidence import read_json
from nnunet_swin.workflows.study_findings import findings_json, findings_table, paper_findings
from nnunet_swin.workflows.study_more_findings import NOISE_FINDING
from nnunet_swin.workflows.study_page import Page, step_note
from nnunet_swin.workflows.study_results import adi_section, appendix, cka_section, per_case_section

MARK = {"done": "done", "failed": "**FAILED**", "missing": "**MISSING**"}


def arms_section(page: Page, state: dict, order: list[str]) -> None:
    page.heading("Arms")
    rows, marks = [], {}
    for i, name in enumerate(order):
        arm = state.get("arms", {}).get(name, {})
        status = arm.get("status", "missing")
        note = arm.get("reason", "")
        pred = arm.get("prediction", {})
        if pred.get("status") == "failed":
            note = (note + "; " if note else "") + f"prediction FAILED (log `{pred.get('log')}`)"
        if status != "done":
            marks[i] = status
            note = note or ("not trained yet" if status == "missing" else "")
        rows.append({"arm": name, "status": MARK.get(status, status), "trainer": arm.get("trainer", ""),
                     "configuration": arm.get("configuration", ""),
                     "folds": " ".join(map(str, arm.get("folds", []))), "log": f"`{arm.get('log', '')}`",
                     "note": note})
    page.table(pd.DataFrame(rows), marks)
    failed = [n for n in order if state.get("arms", {}).get(n, {}).get("status") != "done"]
    if failed:
        page.text("**Arms not in the tables below: " + ", ".join(
            f"{n} ({state.get('arms', {}).get(n, {}).get('status', 'missing')})" for n in failed) + ".**")
    for name in order:
        tail = state.get("arms", {}).get(name, {}).get("log_tail")
        if tail:
            page.text(f"Last lines of the {name} training log:")
            page.preformatted(tail)


def comparison_section(page: Page, root: Path, state: dict) -> None:
    """One Table 2-shaped comparison per pre-specified family (``comparison/<family>/``, ``study_comparisons``), or a
    study's single comparison (``comparison/``); each family's paired tests collapsed."""
    page.heading("Table 2 and the other pre-specified comparisons")
    tables = comparison_tables(root) or ({"": root / "comparison" / "comparison_table.csv"}
                                         if (root / "comparison" / "comparison_table.csv").is_file() else {})
    if not tables:
        page.text(f"No comparison ({step_note(state, 'compare')}).")
        return
    page.text(f"Evaluated on the {state.get('test_split', 'test split')}. One comparison per pre-specified family "
              "(each with its own Bonferroni over its pairs and its own set of cases missed by all of its arms); "
              "median [IQR] with the Table 2 protocol (bounded penalties for missed cases, Wilcoxon / McNemar).")
    for family, table in tables.items():
        folder = table.parent.relative_to(root).as_posix()
        if family:
            page.heading(f"{family}: {PAPER_FAMILIES[family].description}", 3)
        page.table(compact_table(pd.read_csv(table)))
        page.text(f"All columns: `{folder}/comparison_table.csv`; the comparison's own Markdown: "
                  f"`{folder}/comparison.md`.")
        pairwise = table.parent / "comparison_pairwise.csv"
        if pairwise.is_file():
            pairs = pd.read_csv(pairwise)
            if "estimate" in pairs and "difference_pp" in pairs:
                pairs["estimate"] = pairs["estimate"].where(pairs["metric"] != "detected", pairs["difference_pp"])
            page.details(f"{len(pairs)} paired tests{' of ' + family if family else ''} (p Bonferroni-adjusted "
                         "over the family's pairs within a metric; n_eff = pairs entering the test; estimate = "
                         "Hodges-Lehmann, detection in pp)")
            page.table(pairs[[c for c in ("family", "label", "group", "metric", "model_a", "model_b", "test",
                                          "n_eff", "estimate", "ci_low", "ci_high", "p", "p_bonferroni",
                                          "min_attainable_p_bonferroni") if c in pairs]])
            page.end_details()


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def cost_section(page: Page, state: dict, order: list[str]) -> None:
    """What each finished arm cost (``study.arm_cost``), and the Masked arm against ACT when both finished."""
    page.heading("Cost of the arms")
    arms = state.get("arms", {})
    rows = []
    for name in order:
        cost = arms.get(name, {}).get("cost")
        if not cost:
            continue
        rows.append({"arm": name, "configuration": arms[name].get("configuration", ""),
                     "patch": " x ".join(map(str, cost["patch_size"])), "tokens per patch": cost["tokens_per_patch"],
                     "epochs": cost["epochs"], "median epoch s": _seconds(cost.get("median_epoch_seconds")),
                     "training s": _seconds(cost.get("training_seconds")),
                     "prediction s": _seconds(cost.get("prediction_seconds"))})
    if not rows:
        page.text("No arm has finished.")
        return
    page.text("Epoch times are nnU-Net's own timestamps (checkpoint_final.pth); prediction is the wall time of "
              "stock nnUNetv2_predict on the test split, when the study ran it.")
    page.table(pd.DataFrame(rows))
    masked, act = arms.get("Masked", {}).get("cost"), arms.get("ACT", {}).get("cost")
    if masked and act:
        parts = [f"{masked['tokens_per_patch'] / act['tokens_per_patch']:.2f}x the tokens per patch"]
        for key, what in (("median_epoch_seconds", "the median epoch time"), ("prediction_seconds", "the prediction "
                                                                                                     "time")):
            if masked.get(key) and act.get(key):
                parts.append(f"{masked[key] / act[key]:.2f}x {what}")
        page.text("Masked against ACT: " + ", ".join(parts) + ".")


def subtype_section(page: Page, root: Path, state: dict) -> None:
    page.heading("Appearance subtypes")
    summary = read_json(root / "subtypes" / "subtypes_summary.json")
    if summary is None:
        page.text(f"No subtypes ({step_note(state, 'subtypes')}).")
    else:
        page.text(f"k = {summary.get('k')} clusters ({', '.join(summary.get('names', []))}), fitted on the training "
                  "cases and applied to the test cases (cases per subtype: Design).")
        for custom, fold in state.get("custom_folds", {}).items():
            page.text(f"Custom fold {fold['fold']} of `splits_final.json` for the {custom}-only arm: "
                      f"{len(fold['train'])} training cases of subtype {custom}.")
        page.figure(root / "subtypes" / "subtype_scatter.png", "subtype scatter")
    page.heading("Comparison by subtype", 3)
    flat = root / "comparison_by_subtype" / "comparison_table.csv"
    tables = comparison_tables(root, by_subtype=True) or ({"": flat} if flat.is_file() else {})
    if not tables:
        page.text(f"No comparison by subtype ({step_note(state, 'compare by subtype')}).")
        return
    for family, table in tables.items():
        compact = compact_table(pd.read_csv(table))
        what = f"family {family} ({', '.join(PAPER_FAMILIES[family].arms)})" if family else "Table 2"
        page.details(f"{what} per subtype ({len(compact)} rows; `{table.relative_to(root).as_posix()}`)")
        page.table(compact)
        page.end_details()


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def compact_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2's layout from ``comparison_table.csv``: median [IQR] per metric, detection rate with its 95% CI."""
    rows = []
    for r in table.to_dict(orient="records"):
        row = {k: r[k] for k in ("family", "label", "group", "model", "n_cases") if k in r}
        if "detection_rate" in r:
            row["detection [95% CI]"] = (f"{_fmt(r['detection_rate'])} [{_fmt(r.get('detection_ci_low'))}, "
                                         f"{_fmt(r.get('detection_ci_high'))}]")
        for metric, title in (("surface_dice", "sDSC @2 mm"), ("dice", "Dice"), ("volume_ratio", "volume ratio"),
                              ("hd95", "HD95")):
            if f"{metric}_median" in r:
                row[f"{title} median [IQR]"] = (f"{_fmt(r[f'{metric}_median'])} [{_fmt(r.get(f'{metric}_q1'))}, "
                                                f"{_fmt(r.get(f'{metric}_q3'))}]")
        rows.append(row)
    return pd.DataFrame(rows)


VERDICT_CSS = {"reproduced": "v-reproduced", "contradicted": "v-contradicted", "inconclusive": "v-inconclusive",
               "not testable at this size": "v-untestable", "not comparable": "v-notcomparable",
               "no paper result": "v-nopaper"}


def _not_run(reason: str) -> bool:
    return reason.startswith("arm ") and reason.endswith(" not run")


def findings_section(page: Page, root: Path, state: dict) -> None:
    """The answer first: one row per paper finding with ours, its interval, n_eff, the smallest attainable p and the
    verdict (``study_findings``, ``evaluation.verdicts``); also written to ``findings.json``."""
    page.heading("The paper's findings, checked")
    rows = paper_findings(root, state)
    write_json(root / "findings.json", findings_json(rows))
    table = findings_table(rows)
    table["note"] = [r.note for r in rows]
    not_run = table["why"].map(_not_run)
    paper = table[(table.verdict != "no paper result") & ~not_run]
    others = table[table.verdict == "no paper result"]
    counts = paper.verdict.value_counts()
    page.text("Verdicts: " + (", ".join(f"**{k}** {v}" for k, v in counts.items()) or "none") + ". reproduced = "
              "the paper's direction and p < 0.05 after Bonferroni within the finding's pre-specified family; "
              "contradicted = significant the other way, or the interval excludes the paper's effect; not testable "
              "at this size = even the most extreme outcome could not reach adjusted p < 0.05 (column `smallest p "
              "(adj.)`) and the interval holds the paper's effect; inconclusive = the interval holds both no effect "
              "and the paper's. Estimates: Hodges-Lehmann with the exact signed-rank interval (achieved level "
              "shown), detection in percentage points with Newcombe's interval, Spearman rho with a permutation p. "
              "n_eff = non-zero pairs (Wilcoxon), discordant pairs (McNemar). All rows: `findings.json`.")
    noise = next((r for r in rows if r.finding == NOISE_FINDING), None)
    if noise is not None:
        page.text(f"**Negative control (training noise).** {noise.note or noise.reason}")
    shown = ["verdict", "finding", "metric", "paper", "ours [CI]", "n_eff", "smallest p (adj.)", "p adj.", "why"]
    if paper.empty:
        page.text("No finding of the paper could be checked: none of its arms finished.")
    else:
        view = paper[shown].copy()
        view["why"] = [w + (f" ({n})" if n else "") for w, n in zip(paper["why"], paper["note"])]
        page.table(view.reset_index(drop=True), marks={i: VERDICT_CSS.get(v, "") for i, v in enumerate(view.verdict)})
    if not_run.any():
        gone: dict[str, list[str]] = {}
        for finding, why in zip(table[not_run].finding, table[not_run].why):
            arms = why.removeprefix("arm ").removesuffix(" not run")
            gone.setdefault(finding, [])
            gone[finding] += [arms] if arms not in gone[finding] else []
        page.text("Not checked, their arms were not run: " + "; ".join(
            f"{f} (needs {' and '.join(a)})" for f, a in gone.items()) + ".")
    if not others.empty:
        page.details(f"{len(others)} rows without a paper result (future work, baselines, VR)")
        view = others[["finding", "metric", "family", "ours [CI]", "n_eff", "smallest p (adj.)", "p adj.", "note"]]
        page.table(view.reset_index(drop=True))
        page.end_details()


CSS = ("body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px}"
       "th{background:#eee}tr.failed td{background:#fdd}tr.missing td{background:#ffe9b3}"
       "tr.v-reproduced td:first-child{background:#c8e6c9}tr.v-contradicted td:first-child{background:#ffcdd2}"
       "tr.v-inconclusive td:first-child{background:#fff3c4}tr.v-untestable td:first-child{background:#e0e0e0}"
       "tr.v-notcomparable td:first-child,tr.v-nopaper td:first-child{background:#e3ecf7}"
       ".wide{overflow-x:auto}img{max-width:100%}figure{margin:1em 0}pre{background:#f5f5f5;padding:.5em;overflow-x:auto}"
       "details{margin:1em 0}summary{cursor:pointer;font-weight:bold}figcaption{font-size:85%;color:#555}"
       ".gallery{display:flex;flex-wrap:wrap;gap:1em}.gallery figure{width:31%;margin:0}")


def relative_to_study(text: str, root: Path) -> str:
    """Paths inside the study folder written relative to it (a recorded report names no machine's folders)."""
    for prefix in {str(Path(root)), str(Path(root).resolve())}:
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    return text


def write_study_report(study, extra_sections=()) -> Path:
    """Write ``OUTPUT/report.md`` and ``OUTPUT/report.html`` of a resolved study; return the Markdown path. The
    quickstart preset (``nnunet-swin demo``) opens with its own sections (``study_report_demo``)."""
    state = study.state.to_dict()     # study.json as written, nothing re-derived
    if state.get("preset") == "quickstart":          # `nnunet-swin demo`: what it reduced, scores, commands
        from nnunet_swin.workflows.study_report_demo import quickstart_section
        extra_sections = [lambda page, root, state: quickstart_section(page, study), *extra_sections]
    return write_report(study.paths.output, state, [a.name for a in study.arms], extra_sections)


def write_report(root, state: dict | None = None, order: list[str] | None = None, extra_sections=()) -> Path:
    """Write ``report.md`` and ``report.html`` into the study folder ``root`` from its files alone (``study.json``
    unless ``state`` is given; arms in ``order``, default the study's). ``extra_sections``: callables
    ``(page, root, state)`` whose sections come first, before the findings (a preset's own)."""
    root = Path(root)
    if state is None:
        state = read_json(root / "study.json")
        if state is None:
            from nnunet_swin.errors import UserError
            raise UserError(f"{root} holds no readable study.json; give the folder of a study")
    order = list(order or state.get("arm_order") or state.get("arms", {}))
    figures = root / "figures"
    page = Page(root)
    page.heading("nnunet-swin study", 1)
    page.bullets([f"dataset `{state['dataset']}`, plans `{state['plans']}`, preset `{state.get('preset')}`",
                  f"folds {', '.join(map(str, state.get('folds', [])))}",
                  f"evaluated on: **{state.get('test_split', 'not evaluated')}**"]
                 + ([state["pretrained_note"]] if state.get("pretrained_note") else []))
    for section in extra_sections:        # a preset's own sections (e.g. the quickstart's "read this first")
        section(page, root, state)
    findings_section(page, root, state)
    design_section(page, root, state, order, figures)
    per_case_section(page, root, state, order, figures)
    training_section(page, root, state, order, figures)
    adi_section(page, root, state, figures)
    cka_section(page, root, state, order, figures)
    arms_section(page, state, order)
    comparison_section(page, root, state)
    cost_section(page, state, order)
    subtype_section(page, root, state)
    page.heading("Steps")
    if state.get("steps"):
        page.table(pd.DataFrame([{"step": k, "status": step_note(state, k)} for k in state["steps"]]))
    else:
        page.text("No step has run yet.")
    appendix(page, root, order)
    md = write_text(root / "report.md", relative_to_study("\n".join(page.md), root))
    body = relative_to_study("\n".join(page.html), root)
    write_text(root / "report.html", f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                                     f"<title>nnunet-swin study: {html.escape(state['dataset'])}</title>"
                                     f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
    return md
