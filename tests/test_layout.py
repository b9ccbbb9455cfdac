"""The shape of the tree is part of the design (docs/ARCHITECTURE.md): these keep it readable.

import-linter (in `make test`) holds the layers and the forbidden imports; these add what it
does not check: no import circle anywhere (across packages too), small modules, small folders,
and a README that names every folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "connectors", "sandbox", "evals")
MAX_MODULE_LINES = 500
MAX_MODULES_PER_FOLDER = 12


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), i.e. import circles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in graph.modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_anywhere() -> None:
    # Lazy imports inside functions count too: a circle hidden by one is still a circle.
    graph = grimp.build_graph(*PACKAGES)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def _production_modules() -> list[Path]:
    return [path for folder in ("bot", "connectors") for path in (REPO / folder).rglob("*.py")
            if "migrations" not in path.parts]


def test_no_module_over_500_lines() -> None:
    long = {path.relative_to(REPO).as_posix(): n for path in _production_modules()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_folder_in_bot_with_more_than_12_modules() -> None:
    crowded = {folder.relative_to(REPO).as_posix(): n for folder in [REPO / "bot", *(REPO / "bot").rglob("*")]
               if folder.is_dir() and "__pycache__" not in folder.parts
               and (n := len(list(folder.glob("*.py")))) > MAX_MODULES_PER_FOLDER}
    assert crowded == {}


def test_the_readme_layout_table_names_every_folder() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\| `([\w./-]+)/?`", table, re.MULTILINE))
    folders = {path.name for path in REPO.iterdir() if path.is_dir() and not path.name.startswith(".")}
    folders |= {f"bot/{path.name}" for path in (REPO / "bot").iterdir()
                if path.is_dir() and (path / "__init__.py").exists()}
    assert folders - {name.rstrip("/") for name in named} == set()
