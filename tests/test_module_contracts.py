"""Module contracts: no module reaches into another module's private (underscore) names.

A leading underscore says "may change without notice"; a second module that imports such a name pins it, and
the two then have to change together (as serve.py once did with run.py's loader). What is shared must be
public — hence ``stream/config/typed_yaml.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "backdrop": "backdrop",
    "backdrop.stream": "stream",
    "backdrop.model": "model",
    "backdrop.benchmarks": "benchmarks",
}


def _private(name: str) -> bool:
    """``_y`` is private; ``__version__`` and other dunders are public by convention."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_project_module(dotted: str) -> bool:
    """Whether ``dotted`` names one of the project's modules (a .py file or a package) in the repository."""
    for package, folder in sorted(PACKAGES.items(), key=lambda item: -len(item[0])):
        if dotted == package or dotted.startswith(package + "."):
            path = ROOT / folder / Path(*dotted[len(package) :].split(".")[1:])
            return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    return False


def private_imports(source: str, filename: str) -> list[str]:
    """``file:line: …`` for every private name ``source`` takes from another module.

    Catches ``from x import _y`` from any module, and ``m._y`` where ``m`` is a project module bound by
    ``import backdrop.x as m`` or ``from backdrop import m`` (other libraries' ``os._exit`` and the like are theirs).
    """
    tree = ast.parse(source, filename)
    modules: set[str] = set()  # local names bound to project modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{filename}:{node.lineno}: imports {alias.name} from {node.module or '.'}")
                elif node.level == 0 and _is_project_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_project_module(alias.name):
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            found.append(f"{filename}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for folder in PACKAGES.values():
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += private_imports(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not found, "private names used across modules:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from backdrop.stream.config.run import RunConfig, _build\n", ["m.py:1: imports _build from"]),
        ("from . import _helper\n", ["m.py:1: imports _helper from ."]),
        ("import backdrop.stream.config.run as run\nrun._build(1)\n", ["m.py:2: uses run._build"]),
        ("from backdrop.stream.config import run\nx = run._within\n", ["m.py:2: uses run._within"]),
        ("from backdrop import __version__\nimport os\nos._exit(0)\n", []),
        ("from backdrop.stream.config.run import RunConfig\nRunConfig._private\n", []),  # a class, not a module
    ],
)
def test_the_checker_names_file_and_line(source: str, expected: list[str]) -> None:
    found = private_imports(source, "m.py")
    assert len(found) == len(expected)
    assert all(line.startswith(prefix) for line, prefix in zip(found, expected, strict=True))


def ability_names() -> set[str]:
    """What Source and Sink declare (life cycle and abilities): reading one by name means probing instead."""
    from backdrop.stream.sinks.base import Sink
    from backdrop.stream.sources.base import Source

    return {name for cls in (Source, Sink) for name in vars(cls) if not name.startswith("__")}


def probes(source: str, filename: str, abilities: set[str]) -> list[str]:
    """``file:line: …`` for every ``getattr``/``hasattr`` that asks an object for a declared ability by name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in abilities
        ):
            found.append(f"{filename}:{node.lineno}: {node.func.id}(…, {node.args[1].value!r})")
    return found


def test_abilities_are_declared_not_probed() -> None:
    abilities = ability_names()
    assert {"connected", "damage", "needs_main_thread", "closed_by_viewer", "use_controls", "pump"} <= abilities
    found = []
    for folder in PACKAGES.values():
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += probes(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), abilities)
    assert not found, "abilities probed by name instead of declared on Source/Sink:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ('connected = getattr(pipeline.source, "connected", True)\n', 1),
        ('if callable(getattr(front_end, "use_controls", None)): pass\n', 1),
        ('hasattr(sink, "closed_by_viewer")\n', 1),
        ('getattr(e, "strerror", None)\n', 0),  # not an ability of a source or sink
    ],
)
def test_the_probe_checker_finds_getattr_of_an_ability(source: str, count: int) -> None:
    assert len(probes(source, "m.py", ability_names())) == count
