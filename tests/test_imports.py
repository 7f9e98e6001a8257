"""tlcore is a library: it never imports Streamlit or the ui package; its modules form no
import cycle (function-level imports included), and attacks and rendering stand on the
model alone."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("streamlit", "ui")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_tlcore_never_imports_streamlit_or_ui():
    offenders = {str(path.relative_to(ROOT)): sorted(imported_modules(path) & set(FORBIDDEN))
                 for path in (ROOT / "tlcore").rglob("*.py")}
    assert {path: names for path, names in offenders.items() if names} == {}


def tlcore_imports(path: Path) -> set[str]:
    """The tlcore modules a file imports anywhere in it (function-level imports too):
    `from tlcore.x import y` names `tlcore.x.y` when that is a module, else `tlcore.x`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("tlcore"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "tlcore" or node.module.startswith("tlcore.")):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if _module_path(submodule) else node.module)
    return names


def _module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def tlcore_graph() -> dict[str, set[str]]:
    """Module -> the tlcore modules it imports (itself left out)."""
    graph = {}
    for path in (ROOT / "tlcore").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = tlcore_imports(path)
    return {name: {other for other in imported if other in graph and other != name}
            for name, imported in graph.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others."""
    reaches = {name: set() for name in graph}
    for start in graph:
        stack = list(graph[start])
        while stack:
            current = stack.pop()
            if current not in reaches[start]:
                reaches[start].add(current)
                stack.extend(graph[current])
    groups = {frozenset({name} | {other for other in reaches[name] if name in reaches[other]})
              for name in graph if name in reaches[name]}
    return sorted(sorted(group) for group in groups)


def test_tlcore_has_no_import_cycle():
    assert import_cycles(tlcore_graph()) == []


def test_the_cycle_check_sees_one():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_attacks_and_rendering_depend_on_models_not_on_data_or_runs():
    below = {"tlcore.data", "tlcore.runs", "tlcore.evaluate", "tlcore.pets", "tlcore.petimages"}
    graph = tlcore_graph()
    offenders = {name: sorted(imported & below) for name, imported in graph.items()
                 if name.startswith(("tlcore.attack", "tlcore.visualize")) and imported & below}
    assert offenders == {}


def test_the_check_sees_an_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import streamlit as st\nfrom ui import state\n")
    assert imported_modules(sample) >= {"streamlit", "ui"}


def test_pages_stay_thin_and_leave_numerics_to_tlcore():
    pages = list((ROOT / "app_pages").glob("*.py"))
    assert len(pages) == 8
    for path in pages:
        assert not (imported_modules(path) & {"tensorflow", "keras"}), path
