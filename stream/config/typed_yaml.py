"""The one typed-YAML loader both config schemas (``run``, ``serve``) are built on.

A config file is read safely (size cap, no hanging on a FIFO, bundled configs by name), its mapping becomes
frozen dataclasses by their type hints, and dotted-key overrides replace single fields. Every failure is one
ConfigError line that names the key, so a user sees what to fix without a traceback.
"""

from __future__ import annotations

import dataclasses
import os
import reprlib
import stat
import types
import typing
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from backdrop.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred bytes: anything near this is the wrong file
BUNDLED_PACKAGE = "backdrop.configs"  # where configs shipped with backdrop live, readable by bare name


def require(ok: bool, key: str, message: str) -> None:
    """Raise ``key: message`` unless ``ok``: the one shape every config error has."""
    if not ok:
        raise ConfigError(f"{key}: {message}")


def within(key: str, value: float, low: float, high: float, *, above: bool = False) -> None:
    """Require ``low <= value <= high`` (``low < value`` when ``above``); NaN is never within."""
    ok = (value > low if above else value >= low) and value <= high
    require(ok, key, f"must be in {'(' if above else '['}{low:g}, {high:g}]")


def convert(value: Any, hint: Any, key: str) -> Any:
    """Check/convert one YAML value against a field's type hint, so a wrong type fails at load, not mid-run."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        errors = []
        for option in inner:  # the first that takes the value: int | Literal["auto"] takes 3 and "auto"
            try:
                return convert(value, option, key)
            except ConfigError as e:
                errors.append(str(e).removeprefix(f"{key}: expected ").split(", got")[0])
        raise ConfigError(f"{key}: expected {' or '.join(errors)}, got {reprlib.repr(value)}")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value in choices and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected {' or '.join(map(repr, choices))}, got {reprlib.repr(value)}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a hint is a class, never an instance
        return build(hint, value, key)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {reprlib.repr(value)}")
        return tuple(convert(item, str, f"{key}[{i}]") for i, item in enumerate(items))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError as e:
            raise ConfigError(f"{key}: {reprlib.repr(value)} is too large") from e
    if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{key}: expected {hint.__name__}, got {reprlib.repr(value)}")


def build(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, naming the first unknown key or bad value (a typo is no default)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {reprlib.repr(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown key {dotted!r} (known: {', '.join(sorted(names))})")
        kwargs[key] = convert(value, hints[key], dotted)
    return cls(**kwargs)


def replace_key(obj: Any, dotted: str, value: Any) -> Any:
    """A copy of dataclass ``obj`` with the field at ``dotted`` (``"model.runtime"``) set to ``value``, converted
    like a YAML value, so command-line flags and per-stream keys mean what the same key in a file means."""
    return _replace_path(obj, dotted.split("."), value, dotted)


def _replace_path(obj: Any, path: list[str], value: Any, dotted: str) -> Any:
    head, *rest = path
    hints = typing.get_type_hints(type(obj))
    if head not in hints:
        raise ConfigError(f"unknown key {dotted!r}")
    new = _replace_path(getattr(obj, head), rest, value, dotted) if rest else convert(value, hints[head], dotted)
    return dataclasses.replace(obj, **{head: new})


def parse_assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set`` as (dotted key, YAML value): ``true``, ``0.8``, ``auto``, ``[1, 2]`` mean what they
    mean in a config file, and an empty VALUE is null."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. mask.gamma=0.8")
    try:
        return key, yaml.safe_load(value)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise ConfigError(f"--set {key}: {value!r} is not a YAML value") from e


def assign(data: Any, assignments: Iterable[tuple[str, Any]]) -> Any:
    """The parsed YAML ``data`` with each (dotted key, value) set in it, sections created as needed, so the result
    is checked by the same loader as the file: an unknown key or a bad value is named as if the file held it."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return data  # not a mapping: the loader says so
    data = dict(data)
    for dotted, value in assignments:
        section = data
        *path, last = dotted.split(".")
        for i, name in enumerate(path):
            inner = section.get(name)
            if inner is None:
                inner = {}
            elif not isinstance(inner, dict):
                raise ConfigError(f"--set {dotted}: {'.'.join(path[: i + 1])} is not a section")
            section[name] = inner = dict(inner)
            section = inner
        section[last] = value
    return data


def bundled_configs() -> list[str]:
    """Names of the configs shipped in BUNDLED_PACKAGE (``--config NAME`` reads NAME.yaml there)."""
    return sorted(
        p.name[: -len(".yaml")] for p in resources.files(BUNDLED_PACKAGE).iterdir() if p.name.endswith(".yaml")
    )


def read_yaml(path: Path) -> Any:
    """The parsed YAML of a config file (or a bundled config by name), any failure as one ConfigError line."""
    data = _read_config(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path} is not UTF-8 text: byte 0x{data[e.start]:02x} at offset {e.start}") from e
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config {path}{where} is not valid YAML: {problem}") from e
    except (ValueError, RecursionError) as e:  # PyYAML's int() of a huge number; nesting deeper than the stack
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise ConfigError(f"config {path} is not valid YAML: {reason}") from e
    return parsed


def _read_config(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_CONFIG_BYTES, or of the bundled config of that name.

    Opened non-blocking and checked with fstat, so a FIFO cannot hang the run and /dev/zero is not streamed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as e:
        names = bundled_configs()
        if str(path) in names:
            return resources.files(BUNDLED_PACKAGE).joinpath(f"{path}.yaml").read_bytes()
        raise ConfigError(f"cannot read config {path}: {e.strerror} (bundled configs: {', '.join(names)})") from e
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the name
        raise ConfigError(f"cannot read config {path}: {getattr(e, 'strerror', None) or e}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"config {path} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: is it the right file?")
    return data
