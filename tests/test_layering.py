"""The layering of nampo's packages, read from the source with :mod:`ast`: production code
(nampo/io, products, run, analysis, report and the top-level modules but the command line)
imports nothing from the simulator (nampo/scenario) or the evaluation against its truth
(nampo/evaluation), at module level or inside a function; and nothing under nampo/
imports Prefect (the flows are a client of the library)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NAMPO = Path(__file__).resolve().parents[1] / "nampo"

PRODUCTION_PACKAGES = ("io", "products", "run", "analysis", "report", "sites")
"""Packages of production code, under nampo/."""
NOT_PRODUCTION_TOP = {"cli"}
"""Top-level modules (or packages) of nampo/ that are clients, not production code."""
SIMULATION = ("nampo.scenario", "nampo.evaluation")
"""What production code must not import."""
ORCHESTRATION = ("prefect",)
"""What nothing under nampo/ may import."""


def module_name(root: Path, path: Path) -> str:
    """``nampo.io.cube`` of ``<root>/io/cube.py`` (root: the nampo/ folder)."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the module `name`) imports, anywhere in it: ``import a.b``,
    ``from a import b`` (both ``a`` and ``a.b``), relative imports resolved, and
    ``importlib.import_module("a.b")`` / ``__import__("a.b")`` with a literal name."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if called in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                found.add(str(arg.value))
    return found


def _within(module: str, roots: tuple[str, ...]) -> bool:
    return any(module == r or module.startswith(f"{r}.") for r in roots)


def is_production(root: Path, path: Path) -> bool:
    top = path.relative_to(root).parts[0].removesuffix(".py")
    return top in PRODUCTION_PACKAGES or (
        path.parent == root and top not in NOT_PRODUCTION_TOP and top != "__init__"
    )


def violations(root: Path) -> list[str]:
    """``module imports forbidden`` for every forbidden import under `root` (a nampo/)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(root, path)
        imported = imported_modules(path.read_text(), name, path.name == "__init__.py")
        forbidden = ORCHESTRATION + (SIMULATION if is_production(root, path) else ())
        out += [f"{name} imports {m}" for m in sorted(imported) if _within(m, forbidden)]
    return out


def test_production_code_imports_neither_the_simulator_nor_prefect():
    assert NAMPO.is_dir()
    production = [p for p in NAMPO.rglob("*.py") if is_production(NAMPO, p)]
    # the check reads the packages it is about (an empty list would pass anything)
    assert {p.relative_to(NAMPO).parts[0] for p in production} >= set(PRODUCTION_PACKAGES)
    assert violations(NAMPO) == []


BAD_SOURCES = {
    "module level": "from nampo.scenario.model import load_scenario\n",
    "plain import": "import nampo.evaluation.score\n",
    "from the package": "from nampo import scenario\n",
    "inside a function": "def f():\n    from nampo.evaluation import score\n    return score\n",
    "under TYPE_CHECKING": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from nampo.scenario.known_sites import KnownSite\n"
    ),
    "relative": "from ..scenario import archive\n",
    "by name": "import importlib\nm = importlib.import_module('nampo.scenario.render')\n",
    "prefect": "def f():\n    import prefect\n",
}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "nampo"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_the_check_fails_on_a_bad_import(tmp_path: Path, case: str):
    source = BAD_SOURCES[case]
    root = _tree(tmp_path, {"io/__init__.py": "", "io/bad.py": source})
    assert {v.split(" imports ")[0] for v in violations(root)} == {"nampo.io.bad"}


def test_the_check_tells_production_code_from_its_clients(tmp_path: Path):
    simulator = "from nampo.scenario.model import load_scenario\n"
    root = _tree(
        tmp_path,
        {
            "cli.py": simulator,  # the command line is a client: it may
            "scenario/__init__.py": "",
            "scenario/archive.py": "from nampo.io.cog import write_cog\n" + simulator,
            "evaluation/score.py": "from nampo.scenario import model\n",
            "sites.py": "import nampo.grid\n",
            "grid.py": "def f():\n    " + simulator,  # a top-level module is production
            "report/data.py": "from nampo.evaluation.score import score\n",
            "scenario/flows.py": "from prefect import flow\n",  # nobody imports prefect
        },
    )
    assert violations(root) == [
        "nampo.grid imports nampo.scenario.model",
        "nampo.grid imports nampo.scenario.model.load_scenario",
        "nampo.report.data imports nampo.evaluation.score",
        "nampo.report.data imports nampo.evaluation.score.score",
        "nampo.scenario.flows imports prefect",
        "nampo.scenario.flows imports prefect.flow",
    ]
