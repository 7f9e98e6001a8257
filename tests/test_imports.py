"""tlcore is a library: it never imports Streamlit or the ui package."""
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


def test_the_check_sees_an_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import streamlit as st\nfrom ui import state\n")
    assert imported_modules(sample) >= {"streamlit", "ui"}


def test_pages_stay_thin_and_leave_numerics_to_tlcore():
    pages = list((ROOT / "app_pages").glob("*.py"))
    assert len(pages) == 7
    for path in pages:
        assert not (imported_modules(path) & {"tensorflow", "keras"}), path
