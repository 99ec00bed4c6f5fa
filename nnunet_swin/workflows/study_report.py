"""The study's report: ``report.md`` and a self-contained ``report.html`` from the files our commands wrote.

Sources (each section says when its source is absent): ``study.json`` (arms, steps, test split),
``comparison/<family>/comparison_table.csv`` + ``comparison.md`` (one per pre-specified family: Table 2 and the
others), ``subtypes/subtypes_summary.json`` and ``comparison_by_subtype/<family>/`` (subtype table, comparison by
subtype), ``adi/adi_summary.json`` + its PNGs (ADI per stage, ADI vs padding fraction), ``cka/<arm>/cka_summary.json``
+ ``cka_heatmap.png`` (``cka/random-init/``: the floor); the paper's findings checked
against all of these (``study_findings``, also written to ``findings.json``). The HTML page inlines every figure as a
base64 PNG data URI and links nothing outside itself.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from nnunet_swin.evaluation.families import PAPER_FAMILIES
from nnunet_swin.io import write_json, write_text
from nnunet_swin.workflows.study_comparisons import comparison_tables
from nnunet_swin.workflows.study_findings import findings_json, findings_table, paper_findings, read_json

MARK = {"done": "done", "failed": "**FAILED**", "missing": "**MISSING**"}


class _Page:
    """Blocks rendered twice: Markdown (figures as relative links) and HTML (figures inlined)."""

    def __init__(self, root: Path):
        self.root, self.md, self.html = root, [], []

    def heading(self, text: str, level: int = 2) -> None:
        self.md += ["#" * level + " " + text, ""]
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.md += [text, ""]
        self.html.append(f"<p>{_inline(text)}</p>")

    def bullets(self, items: list[str]) -> None:
        self.md += [f"- {i}" for i in items] + [""]
        self.html.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")

    def table(self, frame: pd.DataFrame, marks: dict[int, str] | None = None) -> None:
        """A table; ``marks`` row index -> css class (``failed`` / ``missing``) for the HTML page."""
        cols = [str(c) for c in frame.columns]
        self.md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        rows = []
        for i, row in enumerate(frame.itertuples(index=False)):
            cells = [_cell(v) for v in row]
            self.md.append("| " + " | ".join(cells) + " |")
            css = f' class="{marks[i]}"' if marks and i in marks else ""
            rows.append(f"<tr{css}>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        self.md.append("")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        self.html.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
                         f"</table></div>")

    def figure(self, path: Path, caption: str) -> bool:
        if not path.is_file():
            self.text(f"*({caption}: {path.name} was not written)*")
            return False
        rel = path.relative_to(self.root) if path.is_relative_to(self.root) else path
        self.md += [f"![{caption}]({rel.as_posix()})", ""]
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.html.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return True

    def preformatted(self, text: str) -> None:
        self.md += ["```", text.rstrip(), "```", ""]
        self.html.append(f"<pre>{html.escape(text.rstrip())}</pre>")


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value)


def _inline(text: str) -> str:
    """Markdown's ``**bold**`` and backticks to HTML, the rest escaped."""
    out, bold, code = [], False, False
    for part in _split_marks(html.escape(text, quote=False)):
        if part == "**" and not code:
            out.append("</strong>" if bold else "<strong>")
            bold = not bold
        elif part == "`":
            out.append("</code>" if code else "<code>")
            code = not code
        else:
            out.append(part)
    return "".join(out) + ("</code>" if code else "") + ("</strong>" if bold else "")


def _split_marks(text: str) -> list[str]:
    parts, buf, i = [], "", 0
    while i < len(text):
        if text.startswith("**", i):
            parts += [buf, "**"]
            buf, i = "", i + 2
        elif text[i] == "`":
            parts += [buf, "`"]
            buf, i = "", i + 1
        else:
            buf += text[i]
            i += 1
    return parts + [buf]


def _step_note(state: dict, name: str) -> str:
    steps = state.get("steps", {})
    step = steps.get(name) or next((v for k, v in steps.items() if k.startswith(f"{name} ")), None)
    if step is None:
        return "not run"
    if step["status"] == "failed":
        return f"**FAILED** (log `{step.get('log')}`)"
    if step["status"] == "skipped":
        return f"skipped: {step.get('reason', '')}"
    return step["status"]


def arms_section(page: _Page, state: dict, order: list[str]) -> None:
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


def comparison_section(page: _Page, root: Path, state: dict) -> None:
    page.heading("Table 2 and the other pre-specified comparisons")
    tables = comparison_tables(root)           # comparison/<family>/ (study_comparisons)
    if not tables:
        page.text(f"No comparison ({_step_note(state, 'compare')}).")
        return
    page.text(f"Evaluated on the {state.get('test_split', 'test split')}. One comparison per pre-specified family "
              "(each with its own Bonferroni over its pairs and its own set of cases missed by all of its arms); "
              "median [IQR] with the Table 2 protocol (bounded penalties for missed cases, Wilcoxon / McNemar).")
    for family, table in tables.items():
        folder = table.parent.relative_to(root).as_posix()
        page.heading(f"{family}: {PAPER_FAMILIES[family].description}", 3)
        page.table(compact_table(pd.read_csv(table)))
        page.text(f"All columns: `{folder}/comparison_table.csv`; the comparison's own Markdown: "
                  f"`{folder}/comparison.md`.")
        pairwise = table.parent / "comparison_pairwise.csv"
        if pairwise.is_file():
            page.text("Paired tests (p Bonferroni-adjusted over the family's pairs within a metric; n_eff = pairs "
                      "entering the test; estimate = Hodges-Lehmann, detection in pp):")
            pairs = pd.read_csv(pairwise)
            if "estimate" in pairs and "difference_pp" in pairs:
                pairs["estimate"] = pairs["estimate"].where(pairs["metric"] != "detected", pairs["difference_pp"])
            page.table(pairs[[c for c in ("family", "label", "group", "metric", "model_a", "model_b", "test",
                                          "n_eff", "estimate", "ci_low", "ci_high", "p", "p_bonferroni",
                                          "min_attainable_p_bonferroni") if c in pairs]])
        for png in sorted(table.parent.glob("comparison_*.png")):
            page.figure(png, f"{family} " + png.stem.replace("comparison_", "").replace("_", " "))


def _seconds(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def cost_section(page: _Page, state: dict, order: list[str]) -> None:
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


def subtype_section(page: _Page, root: Path, state: dict) -> None:
    page.heading("Appearance subtypes")
    summary = read_json(root / "subtypes" / "subtypes_summary.json")
    if summary is None:
        page.text(f"No subtypes ({_step_note(state, 'subtypes')}).")
    else:
        rows = []
        for split in ("train", "test"):
            for name, n in (summary.get(split) or {}).get("counts", {}).items():
                rows.append({"split": split, "subtype": name, "cases": n})
        page.text(f"k = {summary.get('k')} clusters ({', '.join(summary.get('names', []))}), fitted on the training "
                  "cases and applied to the test cases.")
        page.table(pd.DataFrame(rows))
        for custom, fold in state.get("custom_folds", {}).items():
            page.text(f"Custom fold {fold['fold']} of `splits_final.json` for the {custom}-only arm: "
                      f"{len(fold['train'])} training cases of subtype {custom}.")
        page.figure(root / "subtypes" / "subtype_scatter.png", "subtype scatter")
    page.heading("Comparison by subtype", 3)
    tables = comparison_tables(root, by_subtype=True)       # comparison_by_subtype/<family>/
    if not tables:
        page.text(f"No comparison by subtype ({_step_note(state, 'compare table2 by subtype')}).")
        return
    for family, table in tables.items():
        page.text(f"Family {family} ({', '.join(PAPER_FAMILIES[family].arms)}):")
        page.table(compact_table(pd.read_csv(table)))


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def compact_table(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2's layout from ``comparison_table.csv``: median [IQR] per metric, detection rate with its 95% CI."""
    rows = []
    for r in table.to_dict(orient="records"):
        row = {k: r[k] for k in ("label", "group", "model", "n_cases") if k in r}
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


def adi_section(page: _Page, root: Path, state: dict) -> None:
    page.heading("Attention dilution (ADI) against padding fraction")
    summary = read_json(root / "adi" / "adi_summary.json")
    if summary is None:
        page.text(f"No ADI ({_step_note(state, 'adi')}).")
        return
    rows = []
    for model, s in summary.get("models", {}).items():
        row = {"model": model, "configuration": s.get("configuration", ""), "scans": s.get("n_scans")}
        for stage, values in sorted(s.get("stages", {}).items()):
            row[f"ADI {stage}"] = (values.get("adi") or {}).get("mean")
        row["mean pf"] = s.get("pf_mean")
        spearman = s.get("spearman_last_stage_adi_vs_pf") or {}
        row["Spearman rho (last-stage ADI, pf)"] = spearman.get("rho", float("nan"))
        row["p"] = spearman.get("p", float("nan"))
        rows.append(row)
    page.table(pd.DataFrame(rows))
    evaluation = summary.get("evaluation")
    if evaluation:
        page.text(f"{evaluation['model']}: Spearman of {evaluation['metric']} against pf "
                  f"{_fmt(evaluation.get('spearman_metric_vs_pf'))}, against the last stage's ADI "
                  f"{_fmt(evaluation.get('spearman_metric_vs_adi'))} (n = {evaluation['n']}; n/a: undefined, e.g. "
                  f"every scan at the same pf).")
    page.figure(root / "adi" / "adi_vs_pf.png", "ADI of the last stage against padding fraction")
    page.figure(root / "adi" / "adi_per_stage.png", "ADI per stage")
    for png in sorted((root / "adi").glob("*_binned.png")):
        page.figure(png, png.stem.replace("_", " "))


VERDICT_CSS = {"reproduced": "v-reproduced", "contradicted": "v-contradicted", "inconclusive": "v-inconclusive",
               "not testable at this size": "v-untestable", "not comparable": "v-notcomparable",
               "no paper result": "v-nopaper"}


def findings_section(page: _Page, root: Path, state: dict) -> None:
    """The answer first: one row per paper finding with ours, its interval, n_eff, the smallest attainable p and the
    verdict (``study_findings``, ``evaluation.verdicts``); also written to ``findings.json``."""
    page.heading("The paper's findings, checked")
    rows = paper_findings(root, state)
    write_json(root / "findings.json", findings_json(rows))
    counts = pd.Series([r.verdict for r in rows]).value_counts()
    page.text("Verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ". **reproduced** = the paper's "
              "direction and p < 0.05 after Bonferroni within the finding's pre-specified family; **contradicted** = "
              "significant the other way, or the interval excludes the paper's effect; **not testable at this "
              "size** = even the most extreme outcome could not reach adjusted p < 0.05 (column `smallest p (adj.)`) "
              "and the interval holds the paper's effect; **inconclusive** = the interval holds both no effect and "
              "the paper's. Estimates: Hodges-Lehmann with the exact signed-rank interval (achieved level shown), "
              "detection in percentage points with Newcombe's interval, Spearman rho with a permutation p. "
              "n_eff = non-zero pairs (Wilcoxon), discordant pairs (McNemar). All rows: `findings.json`.")
    table = findings_table(rows)
    page.table(table, marks={i: VERDICT_CSS.get(v, "") for i, v in enumerate(table["verdict"])})


def cka_section(page: _Page, root: Path, state: dict, order: list[str]) -> None:
    page.heading("CKA against the pretrained encoder")
    folders = [root / "cka" / n for n in [*order, "random-init"]          # random-init: the floor (untrained)
               if (root / "cka" / n / "cka_summary.json").is_file()]
    if not folders:
        page.text(f"No CKA ({_step_note(state, 'cka')}).")
        return
    rows = []
    for folder in folders:
        s = read_json(folder / "cka_summary.json") or {}
        rows.append({"arm": folder.name, "images used": s.get("images_used"),
                     "mean diagonal CKA": s.get("mean_diagonal")})
    page.table(pd.DataFrame(rows))
    for folder in folders:
        page.figure(folder / "cka_heatmap.png", f"CKA: pretrained encoder vs {folder.name}")


CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px}"
       "th{background:#eee}tr.failed td{background:#fdd}tr.missing td{background:#ffe9b3}"
       "tr.v-reproduced td:first-child{background:#c8e6c9}tr.v-contradicted td:first-child{background:#ffcdd2}"
       "tr.v-inconclusive td:first-child{background:#fff3c4}tr.v-untestable td:first-child{background:#e0e0e0}"
       "tr.v-notcomparable td:first-child,tr.v-nopaper td:first-child{background:#e3ecf7}"
       ".wide{overflow-x:auto}img{max-width:100%}figure{margin:1em 0}pre{background:#f5f5f5;padding:.5em;overflow-x:auto}")


def relative_to_study(text: str, root: Path) -> str:
    """Paths inside the study folder written relative to it (a recorded report names no machine's folders)."""
    for prefix in {str(Path(root)), str(Path(root).resolve())}:
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    return text


def write_study_report(study) -> Path:
    """Write ``OUTPUT/report.md`` and ``OUTPUT/report.html``; return the Markdown path."""
    root, state = study.paths.output, study.state.to_dict()     # study.json as written, nothing re-derived
    order = [a.name for a in study.arms]
    page = _Page(root)
    page.heading("nnunet-swin study", 1)
    page.bullets([f"dataset `{state['dataset']}`, plans `{state['plans']}`, preset `{state.get('preset')}`",
                  f"folds {', '.join(map(str, state.get('folds', [])))}",
                  f"evaluated on: **{state.get('test_split', 'not evaluated')}**"]
                 + ([state["pretrained_note"]] if state.get("pretrained_note") else []))
    if state.get("preset") == "quickstart":          # `nnunet-swin demo`: what it reduced, scores, commands
        from nnunet_swin.workflows.study_report_demo import quickstart_section
        quickstart_section(page, study)
    findings_section(page, root, state)
    arms_section(page, state, order)
    comparison_section(page, root, state)
    cost_section(page, state, order)
    subtype_section(page, root, state)
    adi_section(page, root, state)
    cka_section(page, root, state, order)
    page.heading("Steps")
    if state.get("steps"):
        page.table(pd.DataFrame([{"step": k, "status": _step_note(state, k)} for k in state["steps"]]))
    else:
        page.text("No step has run yet.")
    md = write_text(root / "report.md", relative_to_study("\n".join(page.md), root))
    body = relative_to_study("\n".join(page.html), root)
    write_text(root / "report.html", f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                                     f"<title>nnunet-swin study: {html.escape(state['dataset'])}</title>"
                                     f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
    return md
