"""The shape of the code: no import cycles anywhere, and the judging code free of Ray and MLflow.

Read from the sources (every import, also those inside functions), so a lazy import cannot hide
a cycle; and checked once more by importing the judging package in a fresh interpreter.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sweeps", "trainers", "data", "models", "bench")
JUDGE = "sweeps.judge"
FORBIDDEN_IN_JUDGE = ("ray", "mlflow")
LAYERS = ("judge", "define", "publish", "run", "cli")  # each imports only those before it
MAX_LINES = 300  # a module of sweeps/ that grows past this is doing two jobs


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module `name` imports, project modules resolved to the deepest one that exists."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports(path, name, known) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or a self-import."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo += edges.get(node, ())
    return seen


def test_cycles_are_found_where_there_are_some():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "os"}, "e": {"e"}}
    assert cycles(edges) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": {"os"}}) == []


def test_no_module_imports_a_module_that_imports_it_back():
    assert cycles(graph()) == []


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "sweeps" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def test_each_package_of_sweeps_imports_only_those_listed_before_it():
    upward = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if layer(name) is not None and layer(target) is not None and layer(target) > layer(name)
    ]
    assert not upward


def test_the_judging_code_reaches_neither_ray_nor_mlflow():
    edges = graph()
    judged = [name for name in edges if name == JUDGE or name.startswith(JUDGE + ".")]
    assert len(judged) > 3, judged  # the package was found
    for name in judged:
        reached = reachable(edges, name)
        bad = sorted(m for m in reached if m.split(".")[0] in FORBIDDEN_IN_JUDGE)
        assert not bad, f"{name} reaches {bad}"


def test_importing_the_judging_code_loads_neither_ray_nor_mlflow():
    judged = sorted(n for n in project_modules() if n.startswith(JUDGE + "."))
    code = (
        "import importlib, sys\n"
        f"for name in {judged!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_IN_JUDGE!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_no_module_of_sweeps_is_over_the_line_limit():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "sweeps").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long
