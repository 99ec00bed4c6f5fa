"""The report page: blocks rendered twice, as Markdown (figures as relative links) and as HTML (figures inlined as
base64 PNG data URIs), with Markdown's ``**bold**`` and backticks carried over to the HTML."""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd


class Page:
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
        self.md += ["| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |", "|" + "---|" * len(cols)]
        rows = []
        for i, row in enumerate(frame.itertuples(index=False)):
            cells = [_cell(v) for v in row]
            self.md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            css = f' class="{marks[i]}"' if marks and i in marks else ""
            rows.append(f"<tr{css}>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        self.md.append("")
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        self.html.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
                         f"</table></div>")

    def details(self, summary: str) -> None:
        """Open a collapsed block (closed by :meth:`end_details`); GitHub renders Markdown inside it."""
        self.md += [f"<details><summary>{html.escape(summary)}</summary>", ""]
        self.html.append(f"<details><summary>{html.escape(summary)}</summary>")

    def end_details(self) -> None:
        self.md += ["</details>", ""]
        self.html.append("</details>")

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

    def gallery(self, figures: list[tuple[Path, str]]) -> None:
        """Several figures side by side on the HTML page (one after the other in Markdown)."""
        before = len(self.html)
        for path, caption in figures:
            self.figure(path, caption)
        self.html[before:] = ['<div class="gallery">' + "".join(self.html[before:]) + "</div>"]

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


def step_note(state: dict, name: str) -> str:
    steps = state.get("steps", {})
    step = steps.get(name) or next((v for k, v in steps.items() if k.startswith(f"{name} ")), None)
    if step is None:
        return "not run"
    if step["status"] == "failed":
        return f"**FAILED** (log `{step.get('log')}`)"
    if step["status"] == "skipped":
        return f"skipped: {step.get('reason', '')}"
    return step["status"]
