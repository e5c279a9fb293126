"""`make rank FORMAT=...`: a sweep's ranking written beside ranking.md in the format a paper or a
page needs. Light to import (the command line lists FORMATS when it parses its options)."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.judge import exports

if TYPE_CHECKING:
    from sweeps.publish.summary import Published

# the pictures publish() writes, as the HTML page captions them
PICTURES = {"plot": "test loss of every seed", "reconstructions": "reconstructions, test images"}


def _html(published: "Published") -> str:
    pictures = {
        caption: published.paths[key].read_bytes()
        for key, caption in PICTURES.items()
        if key in published.paths
    }
    return exports.to_html(published.ranking, published.title, published.trust, pictures)


# format -> (its file under results/<sweep id>/, its text; None: ranking.md, written by every rank)
FORMATS: dict[str, tuple[str, Callable[["Published"], str] | None]] = {
    "md": ("ranking.md", None),
    "csv": ("ranking.csv", lambda p: exports.to_csv(p.ranking)),
    "latex": ("ranking.tex", lambda p: exports.to_latex(p.ranking, p.title)),
    "html": ("ranking.html", _html),
}


def export(published: "Published", file_format: str) -> Path:
    """The file of `file_format` beside ranking.md; md is ranking.md itself."""
    name, text = FORMATS[file_format]
    path = published.paths["markdown"].parent / name
    if text is not None:
        path.write_text(text(published), encoding="utf-8")
    return path
