"""`make rank FORMAT=csv|latex|html`: each file, parsed back, holds ranking.parquet's numbers
(every digit in CSV, the printed 4 decimals in LaTeX and HTML); a real SQLite MLflow store."""

import base64
import csv
import math
import re
from html.parser import HTMLParser

import pyarrow.parquet as pq
import pytest

from sweeps.cli import main
from sweeps.judge.exports import latex_text
from tests.sweeps.test_publish import fake_sweep

# three values, one with a single seed (no std, no interval) and a name LaTeX must escape
LOSSES = {"vq": [0.020, 0.0213], "ffn": [0.0101, 0.0117], "llm_ffn&50%": [0.0152]}


@pytest.fixture
def sweep(workspace, capsys):
    """A sweep in the store; rank(format) ranks it, -> (the parquet's rows, its folder, what
    rank printed)."""
    fake_sweep("pair-x", LOSSES)
    folder = workspace / "results" / "pair-x"

    def rank(file_format: str):
        assert main(["rank", "pair-x", "--format", file_format]) == 0
        printed = capsys.readouterr().out
        return pq.read_table(folder / "ranking.parquet").to_pylist(), folder, printed

    return rank


def four(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.4f}"


def test_rank_writes_one_file_per_format_and_names_it(sweep):
    printed = {f: sweep(f)[2] for f in ("md", "csv", "latex", "html")}
    assert "ovat: wrote" not in printed["md"]
    for file_format, name in (
        ("csv", "ranking.csv"),
        ("latex", "ranking.tex"),
        ("html", "ranking.html"),
    ):
        assert printed[file_format].startswith("### pair-x: test loss by pair")
        assert f"ovat: wrote results/pair-x/{name}\n" in printed[file_format]
    names = {p.name for p in sweep("md")[1].iterdir()}
    assert names >= {"ranking.md", "ranking.csv", "ranking.tex", "ranking.html"}


def test_the_csv_holds_every_column_of_the_parquet_to_the_last_digit(sweep):
    rows, folder, _ = sweep("csv")
    with open(folder / "ranking.csv", newline="") as handle:
        read = list(csv.DictReader(handle))
    assert [list(r) for r in read] == [list(rows[0])] * len(rows)  # the parquet's columns
    for parquet_row, csv_row in zip(rows, read, strict=True):
        for name, value in parquet_row.items():
            cell = csv_row[name]
            if isinstance(value, float):
                assert (math.isnan(value) and cell == "") or float(cell) == value, name
            elif isinstance(value, bool):
                assert cell == str(value), name
            else:
                assert type(value)(cell) == value, name


def latex_rows(text: str) -> list[list[str]]:
    body = text.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0]
    return [line.removesuffix(" \\\\").split(" & ") for line in body.splitlines()]


def test_the_latex_table_is_balanced_booktabs_with_one_row_per_value(sweep):
    rows, folder, _ = sweep("latex")
    text = (folder / "ranking.tex").read_text()
    depth = 0
    for char in re.sub(r"\\[{}]", "", text):  # \{ and \} are characters, not groups
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert text.count("\\begin{tabular}") == text.count("\\end{tabular}") == 1
    assert all(rule in text for rule in ("\\toprule", "\\midrule", "\\bottomrule"))
    table = latex_rows(text)
    assert len(table) == len(rows)
    columns = re.search(r"\\begin\{tabular\}\{(\w+)\}", text).group(1)
    for parquet_row, cells in zip(rows, table, strict=True):
        assert len(cells) == len(columns)
        assert cells[0] == str(parquet_row["rank"]) and cells[1] == latex_text(parquet_row["value"])
        mean, std = parquet_row["test_loss_mean"], parquet_row["test_loss_std"]
        expected = f"${mean:.4f}$" if math.isnan(std) else f"${mean:.4f} \\pm {std:.4f}$"
        assert cells[2] == expected
        assert cells[4] == str(parquet_row["n"])
    assert "llm\\_ffn\\&50\\%" in text  # the value's name, escaped


class Page(HTMLParser):
    """The table's cells row by row, every src and href, and the images' data."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self.cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_the_html_page_holds_the_table_and_inlines_its_pictures(sweep):
    rows, folder, _ = sweep("html")
    page = Page()
    page.feed((folder / "ranking.html").read_text())
    head, *table = page.rows
    assert len(table) == len(rows)
    at = {name: head.index(name) for name in ("rank", "value", "test loss", "± std", "n")}
    for parquet_row, cells in zip(rows, table, strict=True):
        assert cells[at["rank"]] == str(parquet_row["rank"])
        assert cells[at["value"]] == parquet_row["value"]  # & unescaped by the parser
        assert cells[at["test loss"]] == four(parquet_row["test_loss_mean"])
        assert cells[at["± std"]] == four(parquet_row["test_loss_std"])
        assert cells[at["n"]].startswith(str(parquet_row["n"]))
    # nothing to fetch: the strip plot is inlined, byte for byte
    assert page.links and all(link.startswith("data:image/png;base64,") for link in page.links)
    inlined = [base64.b64decode(link.split(",", 1)[1]) for link in page.links]
    assert (folder / "test_loss.png").read_bytes() in inlined


def test_an_unknown_format_names_the_valid_ones(workspace, capsys):
    with pytest.raises(SystemExit) as ended:
        main(["rank", "latest", "--format", "docx"])
    assert ended.value.code == 2
    error = capsys.readouterr().err
    assert "invalid choice: 'docx'" in error
    assert all(name in error for name in ("'md'", "'csv'", "'latex'", "'html'"))


@pytest.mark.parametrize(
    "text, latex",
    [
        ("llm_ffn", "llm\\_ffn"),
        ("a&b 50% #1 $x", "a\\&b 50\\% \\#1 \\$x"),
        ("{x}~^\\", "\\{x\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}"),
        ("n < 2", "n \\textless{} 2"),
        ("1 ≈best", "1 $\\approx$best"),
    ],
)
def test_latex_text_escapes_what_latex_would_read_as_markup(text, latex):
    assert latex_text(text) == latex


def test_a_raced_latex_row_says_its_decision_and_the_seeds_it_had_as_the_table_does():
    import dataclasses

    from sweeps.judge.exports import to_latex
    from sweeps.judge.ranking import RankRow
    from sweeps.judge.table import to_markdown

    row = RankRow(rank=1, value="vq", test_loss_mean=0.02, test_loss_std=0.001,
                  test_loss_min=0.019, test_loss_max=0.021, n=4, params_total=1,
                  params_bottleneck=1, runs="", failed=0, notes="", diff_to_baseline=math.nan,
                  diff_ci_low=math.nan, diff_ci_high=math.nan, verdict="baseline",
                  decision="separated", decided_at=4)  # fmt: skip
    undecided = dataclasses.replace(row, rank=2, value="ffn", decision="", decided_at=0)
    lines = to_latex([row, undecided], "t").split("\\midrule\n", 1)[1].splitlines()
    assert lines[0].endswith("& separated at 4 \\\\") and lines[1].endswith("& -- \\\\")
    assert "| separated at 4 |" in to_markdown([row, undecided], "t")
