"""`encoders` is a library: it imports nothing from the platform (`bentos`) or the entry points (`scripts`),
and the notebooks use the library only (and `bentos.billing`, should one ever need prices)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY_FILES = sorted((REPO / "encoders").rglob("*.py"))
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def imported_modules(source: str) -> set[str]:
    """Every absolute module an import statement (at any depth) or a constant-string
    `importlib.import_module(...)` / `__import__(...)` call names."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                modules.add(node.args[0].value)
    return modules


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_library_has_files_to_check() -> None:
    assert REPO / "encoders" / "audio.py" in LIBRARY_FILES
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_library_module_imports_neither_the_platform_nor_scripts(path: Path) -> None:
    offending = sorted(m for m in imported_modules(path.read_text()) if _top(m) in ("bentos", "scripts"))
    assert offending == [], f"{path.relative_to(REPO)} imports {offending}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_only_the_library(path: Path) -> None:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    source = "\n".join(
        line
        for cell in cells
        for line in "".join(cell["source"]).splitlines()
        if not line.lstrip().startswith(("%", "!"))  # IPython magics are not Python
    )
    modules = imported_modules(source)
    # It uses the library: the encoders, or (the billing report) the price function.
    assert any(_top(m) == "encoders" or m.startswith("bentos.billing") for m in modules)
    offending = sorted(
        m
        for m in modules
        if _top(m) == "scripts" or (_top(m) == "bentos" and not m.startswith("bentos.billing"))
    )
    assert offending == [], f"{path.name} imports {offending}"


def test_the_checker_sees_imports_inside_functions_and_dynamic_ones() -> None:
    source = (
        "import importlib\n"
        "def f():\n"
        "    from bentos.core.config import load_config\n"
        "    importlib.import_module('scripts.make_voices')\n"
        "from . import sibling\n"
    )
    assert imported_modules(source) == {"importlib", "bentos.core.config", "scripts.make_voices"}
