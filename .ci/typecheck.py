"""Type-check the package `backdrop` with mypy, every module under the name it is imported by.

`backdrop`'s subpackages live in top-level folders (pyproject.toml's [tool.setuptools] package-dir:
`backdrop.stream` is stream/, `backdrop.model` is model/, …). mypy has no such mapping: `mypy -p backdrop`
finds backdrop/ alone and reports every `backdrop.stream…` import as missing, and `mypy stream` would name
the modules `stream.…`, which nothing imports. So this script lists the modules of the packages that
pyproject.toml installs, each with its import name and its real path, and hands that list to mypy's own
build; the settings are [tool.mypy]'s in pyproject.toml and errors name the real files (stream/core/queues.py).

    python .ci/typecheck.py [mypy options…]     # e.g. --no-incremental; exit status as mypy's
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # mypy itself depends on tomli below Python 3.11
    import tomli as tomllib

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def package_modules(pyproject: Path = PYPROJECT) -> dict[str, Path]:
    """Import name → file of every module of the packages that [tool.setuptools] installs."""
    setuptools = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools.get("package-dir", {})
    modules: dict[str, Path] = {}
    for package in setuptools["packages"]:
        # setuptools' rule: the longest mapped prefix of the package's name gives its folder.
        parts = package.split(".")
        for n in range(len(parts), -1, -1):
            prefix = ".".join(parts[:n])
            if prefix in package_dir:
                folder = ROOT / package_dir[prefix] / Path(*parts[n:])
                break
        else:
            folder = ROOT / Path(*parts)
        if not folder.is_dir():
            raise SystemExit(f"typecheck: package {package}: no folder {folder}")
        for path in sorted(folder.glob("*.py")):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # mypy reads the sources, and names them in its messages, relative to here
    _, options = process_options(["--config-file", str(PYPROJECT), *argv], require_targets=False)
    sources = [BuildSource(str(path.relative_to(ROOT)), module) for module, path in sorted(package_modules().items())]
    try:
        messages = build.build(sources, options).errors
        blocked = False
    except CompileError as e:
        messages, blocked = e.messages, True
    for line in messages:
        print(line)
    errors = [m for m in messages if ": error:" in m]
    files = {m.split(":", 1)[0] for m in errors}
    if errors:
        print(
            f"Found {len(errors)} error{'s' * (len(errors) != 1)} in {len(files)} file{'s' * (len(files) != 1)} "
            f"(checked {len(sources)} source files)"
        )
        return 2 if blocked else 1
    print(f"Success: no issues found in {len(sources)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
