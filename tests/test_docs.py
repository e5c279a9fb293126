"""The docs against the code: no heading twice, no link to a missing file or anchor, no
`make` target that does not exist (in the docs or in a message the code prints), quoted
outputs that name the command that prints them, and a config reference that matches the code."""

import re
from pathlib import Path

import pytest

from bench.docs import doc_files, quoted_blocks
from tests.conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")
# `make sweep`, make sweep ABLATION=..., "make server": a target, not the verb ("make it")
MAKE = re.compile(r"\bmake ([a-z][a-z0-9-]*)(?=[`'\")]| [A-Z_]+=|$)", re.MULTILINE)
CODE_DIRS = ("sweeps", "trainers", "data", "models", "bench", "docker")


def targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.MULTILINE))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)  # not comments in code
    return [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{1,6} ", line)]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_no_heading_appears_twice(path):
    seen = headings(path)
    assert len(seen) == len(set(seen)), sorted({h for h in seen if seen.count(h) > 1})


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_link_reaches_a_file_and_its_anchor(path):
    for link in LINK.findall(path.read_text()):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.name}: link to a missing file {link}"
        if anchor and file.suffix == ".md":
            assert anchor in {slug(h) for h in headings(file)}, f"{path.name}: no #{anchor}"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_every_make_command_in_the_docs_exists(path):
    missing = sorted(set(MAKE.findall(path.read_text())) - targets())
    assert not missing, f"{path.name} names make targets that do not exist: {missing}"


def test_every_make_command_the_code_prints_exists():
    named = {}
    for folder in CODE_DIRS:
        for file in (ROOT / folder).rglob("*"):
            if file.suffix in (".py", ".sh", ".yaml") and file.is_file():
                for target in MAKE.findall(file.read_text()):
                    named.setdefault(target, file.relative_to(ROOT))
    missing = {t: str(f) for t, f in named.items() if t not in targets()}
    assert not missing, f"messages name make targets that do not exist: {missing}"


def test_quoted_outputs_name_a_make_command_that_exists():
    blocks = quoted_blocks()
    assert blocks, "the README quotes at least its ranking"
    for block in blocks:
        assert block.command.split()[1] in targets(), block


def test_the_config_reference_is_the_code():
    from trainers.config_reference import PAGE, render

    assert PAGE.read_text() == render(), "docs/config.md is stale: run make docs"


def test_the_readme_is_read_in_ten_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) < 200
