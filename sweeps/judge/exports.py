"""The ranking as CSV, as a LaTeX table and as a self-contained HTML page: text only (where the
text is written is sweeps.publish's business). The numbers are the ones ranking.parquet holds:
CSV keeps every digit; LaTeX and HTML print them as the Markdown table does (4 decimals)."""

import base64
import csv
import html
import io
import math
import re
import textwrap
from dataclasses import fields

from sweeps.judge.ranking import RankRow
from sweeps.judge.table import decision_text, full_columns, is_raced, legend, versus_text

FIELDS = [f.name for f in fields(RankRow)]  # ranking.parquet's columns, in its order


def to_csv(ranking: list[RankRow]) -> str:
    """One row per value, every RankRow field; floats in full (repr), NaN as an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in ranking:
        writer.writerow(_csv_cell(getattr(row, name)) for name in FIELDS)
    return out.getvalue()


def _csv_cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


LATEX_SPECIAL = re.compile(r"[\\{}&%$#_^~<>]")
LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def latex_text(text: str) -> str:
    """Text set in LaTeX as written (value names such as `llm_ffn` or `50%` included)."""
    text = LATEX_SPECIAL.sub(lambda m: LATEX_ESCAPES.get(m.group(), "\\" + m.group()), text)
    return text.replace("≈", r"$\approx$").replace("Δ", r"$\Delta$").replace("–", "--")


def _mean_std(r: RankRow) -> str:
    if math.isnan(r.test_loss_mean):
        return "--"
    if math.isnan(r.test_loss_std):
        return f"${r.test_loss_mean:.4f}$"
    return f"${r.test_loss_mean:.4f} \\pm {r.test_loss_std:.4f}$"


def to_latex(ranking: list[RankRow], title: str) -> str:
    """A booktabs `tabular` (\\usepackage{booktabs}): mean ± std over seeds, the difference to
    the baseline with its interval, the verdict, P(best); the legend as a comment above it."""
    raced = is_raced(ranking)
    head = ["Rank", "Value", "Test loss", "Val loss", "$n$", r"$\Delta$ vs baseline", "Verdict"]
    head += ["P(best)"] + (["Decision"] if raced else [])
    lines = [
        f"% {latex_text(title)}",
        *(f"% {line}" for line in textwrap.wrap(latex_text(legend(ranking)), 96)),
        r"\begin{tabular}{rlrrrllr" + ("l" if raced else "") + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for r in ranking:
        cells = [
            str(r.rank),
            latex_text(r.value),
            _mean_std(r),
            "--" if math.isnan(r.val_loss_mean) else f"${r.val_loss_mean:.4f}$",
            str(r.n),
            latex_text(versus_text(r)),
            latex_text(r.verdict),
            "--" if math.isnan(r.p_best) else f"{r.p_best:.2f}",
        ] + ([latex_text(decision_text(r)) or "--"] if raced else [])
        lines.append(" & ".join(cells) + r" \\")
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", ""])


PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse}th,td{padding:.25em .6em;border-bottom:1px solid #ccc}"
    "td.num,th.num{text-align:right}img{max-width:100%}"
)


def to_html(ranking: list[RankRow], title: str, trust: str, pictures: dict[str, bytes]) -> str:
    """One page with nothing to fetch: the full table, its legend and what the ranking can
    claim, and each picture (a caption -> PNG bytes) inlined as a data URL."""
    columns = full_columns(ranking)

    def row(cells: list[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=num' if c.right else ''}>{html.escape(text)}</{tag}>"
                for c, text in zip(columns, cells, strict=True)
            )
            + "</tr>"
        )

    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<table>",
        row([c.name for c in columns], "th"),
        *(row([c.cell(r) for c in columns], "td") for r in ranking),
        "</table>",
        f"<p>{html.escape(legend(ranking))}</p>",
        *(f"<p>{html.escape(line)}</p>" for line in trust.splitlines() if line.strip()),
    ]
    for caption, png in pictures.items():
        data = base64.b64encode(png).decode("ascii")
        body.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
