"""docs/config.md from the config dataclasses themselves: each key, its type, its default and
the comment beside its field, so the reference cannot drift from the code (a test compares)."""

import dataclasses
import inspect
import re
from pathlib import Path

from trainers.config import DERIVED, SECTIONS
from trainers.presets import PRESETS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "config.md"
COMMENT = re.compile(r"^\s*(\w+):.*?#\s*(.+)$")

INTRO = """# Configuration reference

Generated from the config dataclasses by `make docs` (a test fails when this page and the code
disagree). Every key is a dotted name: set it in an ablation file's `base:` or `vary:`, or on
the command line with `SET='key=value ...'`. An unknown key, or a value that does not parse or
is out of range, is an error that names the key and what is valid. Every run logs all of them
as MLflow params, and `train.global_batch_size` beside them.
"""


def field_comments(cls: type) -> dict[str, str]:
    """{field: the comment on its line} from the class's source."""
    comments = {}
    for line in inspect.getsource(cls).splitlines():
        found = COMMENT.match(line)
        if found:
            comments[found.group(1)] = found.group(2).strip()
    return comments


def section_table(name: str, cls: type) -> list[str]:
    comments = field_comments(cls)
    lines = [
        f"## {name}",
        "",
        f"{(cls.__doc__ or '').strip()}",
        "",
        "| key | type | default | what |",
        "|---|---|---|---|",
    ]
    for field in dataclasses.fields(cls):
        default = field.default
        shown = f"`{default!r}`" if isinstance(default, str) else f"`{default}`"
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        what = comments.get(field.name, "").replace("|", "\\|")
        lines.append(f"| `{name}.{field.name}` | {kind} | {shown} | {what} |")
    return lines


def render() -> str:
    parts = [INTRO]
    for name, cls in SECTIONS.items():
        parts.append("\n".join(section_table(name, cls)) + "\n")
    derived = ", ".join(f"`{key}`" for key in DERIVED)
    parts.append(f"## Derived\n\nLogged with every run, never set: {derived}.\n")
    presets = ["## Presets", "", "Named configs under a sweep's base (`PRESET=`, `preset:`):", ""]
    for preset, settings in PRESETS.items():
        shown = ", ".join(f"`{k}={v}`" for k, v in settings.items()) or "the defaults above"
        presets.append(f"- `{preset}`: {shown}")
    parts.append("\n".join(presets) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
