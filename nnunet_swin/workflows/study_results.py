"""The report's result sections beyond the findings: paired per-case plots and missed cases, ADI at the stage
comparable with the paper's stage 3, CKA per block with its random-initialisation floor, and the appendix (CKA
heatmaps, the ADI step's own figures)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnunet_swin.workflows import study_figures as fig
from nnunet_swin.workflows.study_evidence import (ABS_LOG_VR, comparable_stage, per_case_table, read_json,
                                                  with_abs_log_vr)
from nnunet_swin.workflows.study_more_findings import case_features
from nnunet_swin.workflows.study_page import Page, step_note


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def per_case_section(page: Page, root: Path, state: dict, order: list[str], figures: Path) -> None:
    page.heading("Per case: paired across the arms")
    table = per_case_table(root)
    done = [a for a in order if state.get("arms", {}).get(a, {}).get("status") == "done"]
    if table is None:
        page.text(f"No per-case table ({step_note(state, 'compare')}); it needs two finished arms.")
        return
    arms = [a for a in order if a in set(table.model)] + [m for m in dict.fromkeys(table.model) if m not in order]
    arms = [a for a in arms if a in done or a not in state.get("arms", {})]
    table = with_abs_log_vr(table[table.model.isin(arms)])
    labels = list(dict.fromkeys(table["label"].astype(str))) if "label" in table else []
    if len(labels) > 1:                   # one line per case: the first label (the tumour's, for our studies)
        page.text(f"Label {labels[0]} of {', '.join(labels)}.")
        table = table[table["label"].astype(str) == labels[0]]
    if "subtype" not in table:
        table["subtype"] = "all"
    if len(arms) < 2:
        page.text(f"Paired plots skipped: {len(arms)} finished arm with per-case metrics ({', '.join(arms)}); "
                  "they need two.")
    else:
        page.text("One line per test case across the arms, coloured by subtype; a black cross marks a case the arm "
                  "missed (Dice < 0.1). Raw values (the tests use bounded penalties for misses).")
    for metric, title, log in (("surface_dice", "sDSC @2 mm", False), ("dice", "Dice", False),
                               (ABS_LOG_VR, "|log VR| (0 = volume exact)", False)):
        if metric in table and len(arms) >= 2:
            page.figure(fig.paired_cases(table, arms, metric, title, figures / f"paired_{metric}.png", log),
                        f"{title} per case across the arms")
    missed = table[table.detected == 0][["model", "case_id", "subtype"]].rename(columns={"model": "arm"})
    features = case_features(root)
    if missed.empty:
        page.text("No arm missed a test case.")
        return
    if features is not None:
        missed = missed.merge(features.rename(columns={"tumour_volume": "tumour volume (mm3)"}), on="case_id",
                              how="left")
    page.text("Missed cases (Dice < 0.1), with the tumour's volume and contrast to the wall (subtypes step):")
    page.table(missed.reset_index(drop=True))


def adi_section(page: Page, root: Path, state: dict, figures: Path) -> None:
    page.heading("Attention dilution (ADI) against padding fraction")
    summary = read_json(root / "adi" / "adi_summary.json")
    if summary is None:
        page.text(f"No ADI ({step_note(state, 'adi')}).")
        return
    stage, per_scan = comparable_stage(state), root / "adi" / "adi_per_scan.csv"
    scans = pd.read_csv(per_scan) if per_scan.is_file() else None
    if stage is not None and scans is not None and f"adi_s{stage}" in scans:
        page.figure(fig.adi_against_pf(scans, stage, 3, figures / "adi_comparable_stage.png"),
                    f"ADI at stage {stage} (the paper's stage 3) against pf, the paper's means overlaid")
    else:
        page.text("ADI at the paper's stage 3: " + ("no stage of this geometry has its token map (Design, stage "
                                                     "mapping)" if stage is None else "no per-scan ADI table"))
    rows = []
    for model, s in summary.get("models", {}).items():
        row = {"model": model, "configuration": s.get("configuration", ""), "scans": s.get("n_scans"),
               "mean pf": s.get("pf_mean")}
        for name, values in sorted(s.get("stages", {}).items()):
            mean = {k: (values.get(k) or {}).get("mean") for k in ("adi", "adi_input", "adi_window")}
            row[name] = _fmt(mean["adi"]) + (f" ({_fmt(mean['adi_input'])} + {_fmt(mean['adi_window'])})"
                                             if mean["adi_input"] is not None and mean["adi_window"] is not None
                                             else "")
        rows.append(row)
    page.text("Mean ADI per stage as total (input padding + window padding): input padding is the crop's zero "
              "padding, window padding Swin's padding of a token map to whole windows.")
    page.table(pd.DataFrame(rows))
    page.figure(root / "adi" / "adi_per_stage.png", "ADI per stage")


def _diagonal(folder: Path) -> pd.Series | None:
    summary = read_json(folder / "cka_summary.json") or {}
    diagonal = summary.get("diagonal")
    return pd.Series(diagonal, dtype=float) if diagonal else None


def cka_section(page: Page, root: Path, state: dict, order: list[str], figures: Path) -> None:
    page.heading("CKA against the pretrained encoder")
    folders = [root / "cka" / n for n in order if (root / "cka" / n / "cka_summary.json").is_file()]
    if not folders:
        page.text(f"No CKA ({step_note(state, 'cka')}).")
        return
    floor = _diagonal(root / "cka" / "random-init")
    diagonals = {f.name: d for f in folders if (d := _diagonal(f)) is not None}
    if diagonals:
        page.figure(fig.cka_lines(diagonals, floor, figures / "cka_per_block.png"), "CKA per block")
    page.text("Floor: an untrained network of the same layout against the pretrained encoder "
              "(`cka/random-init/cka_summary.json`); a fine-tuned arm near the floor has kept nothing of the "
              "encoder." if floor is not None else
              "No random-initialisation floor (`cka/random-init/cka_summary.json` absent): CKA near 1 cannot be told "
              "from what an untrained network of the same layout scores.")
    rows = []
    for folder in folders:
        s = read_json(folder / "cka_summary.json") or {}
        rows.append({"arm": folder.name, "images used": s.get("images_used"),
                     "mean diagonal CKA": s.get("mean_diagonal")})
    if floor is not None:
        untrained = read_json(root / "cka" / "random-init" / "cka_summary.json") or {}
        rows.append({"arm": "floor (untrained)", "images used": untrained.get("images_used"),
                     "mean diagonal CKA": float(floor.mean())})
    page.table(pd.DataFrame(rows))


def appendix(page: Page, root: Path, order: list[str]) -> None:
    """CKA heatmaps and the ADI step's own figures, when there are any."""
    heatmaps = [root / "cka" / n / "cka_heatmap.png" for n in order + ["random-init"]]
    heatmaps = [h for h in heatmaps if h.is_file()]
    extra = [root / "adi" / "adi_vs_pf.png", *sorted((root / "adi").glob("*_binned.png"))]
    extra = [e for e in extra if e.is_file()]
    if not heatmaps and not extra:
        return
    page.heading("Appendix")
    if heatmaps:
        page.gallery([(h, f"CKA: pretrained encoder against {h.parent.name}") for h in heatmaps])
    for e in extra:
        page.figure(e, "ADI step: " + e.stem.replace("_", " ") + (" (the last stage)" if e.stem == "adi_vs_pf"
                                                                   else ""))
