"""Generated pages of the documentation site, written by mkdocs-gen-files at every ``mkdocs build``.

Nothing here is maintained by hand, so the reference cannot drift from the code:

* ``reference/cli.md``: every subcommand and flag, walked from ``backdrop.cli.build_parser()`` (argparse itself).
* ``reference/config.md``: every key of the run config and of serve's, walked with ``dataclasses.fields`` over
  ``RunConfig`` and ``ServeOptions``: its type (the field's type hint), its default (the field's default) and
  its description (the comment on the field's line in the class's source). Its range is what the class's own
  ``validate()`` checks: the build calls ``validate()`` on the defaults with ``within``/``require`` replaced by
  recorders (they note every bound and every message instead of raising), so the page shows exactly what a
  config file is held to. A bound that follows another key (``serve.restart_max_s`` ≥ ``restart_initial_s``)
  is found by validating a second, altered copy and is named as that key.
* ``results/``: the committed measurement files of ``benchmarks/results/`` (plots, JSON, notes), so the
  performance pages show what ``make bench`` last wrote.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import re
import tokenize
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import mkdocs_gen_files

from backdrop.cli import build_parser
from backdrop.stream.config import run as run_config
from backdrop.stream.config import serve as serve_config

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_YAML = REPO / "configs" / "default.yaml"
RANGE_ONLY = re.compile(r"[\[(][^\])]*[\])]")  # a comment that is only a range says nothing the range column does not
RANGE_PREFIX = re.compile(r"^(?:[\[(][^\])]*[\])](?: or null(?: \([^)]*\))?| or auto)?|>= 1 or null \([^)]*\)|> 0):\s*")


def cell(text: object) -> str:
    """``text`` safe inside a Markdown table cell: pipes escaped, and brackets outside code spans, which Markdown
    (and mkdocs-autorefs) would read as links (``testsrc[:WxH][@FPS]``)."""
    parts = str(text).replace("|", "\\|").replace("\n", " ").strip().split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("[", "\\[").replace("]", "\\]")
    return "`".join(parts)


# --- the command line -------------------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of ``parser``, in registration order."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def flag_rows(parser: argparse.ArgumentParser) -> Iterator[str]:
    """One table row per argument of ``parser``: flags, value, default, help (with argparse's %(default)s filled)."""
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.metavar or action.dest}`"
        takes_value = action.nargs != 0
        value = formatter._format_args(action, action.dest.upper()) if takes_value and action.option_strings else ""
        default = action.default
        shown = "" if default in (None, argparse.SUPPRESS, False) or not takes_value else f"`{default}`"
        help_text = formatter._expand_help(action) if action.help else ""
        yield f"| {names} | {cell(f'`{value}`' if value else '')} | {cell(shown)} | {cell(help_text)} |"


def command_section(path: str, summary: str, parser: argparse.ArgumentParser, level: int) -> Iterator[str]:
    yield f"{'#' * level} `{path}`\n"
    if summary:
        yield f"{summary[0].upper()}{summary[1:]}.\n"
    yield f"```text\n{parser.format_usage().strip()}\n```\n"
    if parser.description:
        yield f"{parser.description.strip()}\n"
    rows = list(flag_rows(parser))
    if rows:
        yield "| argument | value | default | meaning |\n|---|---|---|---|"
        yield from rows
        yield ""
    if parser.epilog:
        yield f"{parser.epilog.strip()}\n"
    for name, help_text, sub in subcommands(parser):
        yield from command_section(f"{path} {name}", help_text, sub, level + 1)


def cli_page() -> str:
    parser = build_parser()
    lines = [
        "# Command line\n",
        "Generated from `backdrop.cli.build_parser()` when the site is built: every subcommand and every flag, as",
        "`backdrop COMMAND --help` prints them. A flag that sets a config key overrides the `--config` file;",
        "`--set KEY=VALUE` sets any [config key](config.md).\n",
        f"```text\n{parser.format_usage().strip()}\n```\n",
        "| command | what it does |\n|---|---|",
        *(f"| [`{name}`](#backdrop-{name}) | {cell(help_text)} |" for name, help_text, _ in subcommands(parser)),
        "",
    ]
    for name, help_text, sub in subcommands(parser):
        lines += command_section(f"backdrop {name}", help_text, sub, 2)
    return "\n".join(lines) + "\n"


# --- the config keys --------------------------------------------------------------------------------------------


def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of dataclass ``cls`` in its source: on the field's line, else the lines above it."""
    source = inspect.getsource(cls)
    comments: dict[str, str] = {}
    above: list[str] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    by_line: dict[int, list[tokenize.TokenInfo]] = {}
    for token in tokens:
        by_line.setdefault(token.start[0], []).append(token)
    for number in sorted(by_line):
        line = by_line[number]
        kinds = [
            t.type for t in line if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
        ]
        if kinds == [tokenize.COMMENT]:
            above.append(line[-1 if line[-1].type == tokenize.COMMENT else 0].string.lstrip("# ").strip())
            above = [a for a in above if a]
            continue
        match = re.match(r"\s+(\w+)\s*:", line[0].line) if line[0].line.startswith("    ") else None
        trailing = [t.string.lstrip("# ").strip() for t in line if t.type == tokenize.COMMENT]
        if match and line[0].line.startswith("    ") and not line[0].line.startswith("     "):
            comments[match.group(1)] = " ".join([*above, *trailing])
        above = []
    return comments


def yaml_comments(path: Path = DEFAULT_YAML) -> dict[str, str]:
    """Dotted key → its comment in the bundled ``configs/default.yaml`` (continuation lines joined), with the range
    it opens with removed: the range shown is the one validate() checks, not the comment's copy of it."""
    comments: dict[str, str] = {}
    section, last = "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        body, _, comment = line.partition("#")
        comment = comment.strip()
        if not body.strip():
            if last and comment and line.startswith(" "):
                comments[last] += " " + comment
            continue
        match = re.match(r"( *)([A-Za-z_]+):", body)
        if not match:
            last = ""
            continue
        indent, key = len(match.group(1)), match.group(2)
        if indent == 0:
            section = key
        last = key if indent == 0 else f"{section}.{key}"
        comments[last] = comment
    stripped = {key: RANGE_PREFIX.sub("", text) for key, text in comments.items()}
    return {key: text for key, text in stripped.items() if not RANGE_ONLY.fullmatch(text)}


def type_name(hint: Any) -> str:
    """A type hint as a reader writes it: ``int | None``, ``list of str``, ``true | false | auto``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return " \\| ".join(str(arg) for arg in typing.get_args(hint))
    if origin is tuple:
        return "list of " + type_name(typing.get_args(hint)[0])
    if hint is type(None):
        return "null"
    return {"str": "text", "bool": "true \\| false", "int": "int", "float": "float"}.get(hint.__name__, hint.__name__)


def default_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


class Recorder:
    """Stands in for typed_yaml's ``within`` and ``require`` during a ``validate()``: notes, never raises."""

    def __init__(self) -> None:
        self.bounds: dict[str, tuple[float, float, bool]] = {}
        self.rules: dict[str, list[str]] = {}

    def within(self, key: str, value: float, low: float, high: float, *, above: bool = False) -> None:
        self.bounds[key] = (low, high, above)

    def require(self, ok: bool, key: str, message: str) -> None:
        rules = self.rules.setdefault(key, [])
        if message not in rules:
            rules.append(message)


def recorded(validate: Callable[[], None]) -> Recorder:
    recorder = Recorder()
    with ExitStack() as stack:
        for module in (run_config, serve_config):
            stack.enter_context(mock.patch.object(module, "within", recorder.within))
            stack.enter_context(mock.patch.object(module, "require", recorder.require))
        validate()
    return recorder


def probe(section: Any, scale: float) -> Any:
    """A copy of config section ``section`` with every unset number set, so that validate() reaches the checks
    that only run for a set value (``source.width``'s range)."""
    changes = {}
    for f in dataclasses.fields(section):
        value, hint = getattr(section, f.name), typing.get_type_hints(type(section))[f.name]
        numeric = [arg for arg in (typing.get_args(hint) or (hint,)) if arg in (int, float)]
        if value is None and numeric:
            changes[f.name] = numeric[0](8 * scale)
    return dataclasses.replace(section, **changes)


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def ranges(section: Any, prefix: str) -> dict[str, str]:
    """Key → the range validate() holds it to, as ``[low, high]`` (``(`` excludes low), plus its other rules.

    A bound that moves when one other field alone is changed is that field's value, and is shown by its name."""
    base = probe(section, 1)
    first = recorded(base.validate)
    moved: dict[tuple[str, int], str] = {}
    for f in dataclasses.fields(base):
        value = getattr(base, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        altered = recorded(dataclasses.replace(base, **{f.name: type(value)(value * 2 + 1)}).validate)
        for key, bounds in altered.bounds.items():
            for side in (0, 1):
                if key in first.bounds and bounds[side] != first.bounds[key][side]:
                    moved[(key, side)] = f"`{prefix}.{f.name}`"
    found: dict[str, str] = {}
    for key, (low, high, above) in first.bounds.items():
        low_text, high_text = moved.get((key, 0), number(low)), moved.get((key, 1), number(high))
        found[key] = f"{'(' if above else '['}{low_text}, {high_text}]"
    for key, messages in first.rules.items():
        messages = [m.removeprefix("must be in ") for m in messages]
        rules = "; ".join(m for m in messages if not m.startswith(("[", "(")) or key not in found)
        if rules:
            found[key] = f"{found[key]}; {rules}" if key in found else rules
    return {key.removeprefix(f"{prefix}."): text for key, text in found.items()}


def key_rows(section: Any, prefix: str) -> Iterator[str]:
    """One row per field: the meaning is default.yaml's comment where it has one, else the comment in the code."""
    hints, comments, limits = (
        typing.get_type_hints(type(section)),
        field_comments(type(section)),
        ranges(section, prefix),
    )
    documented = yaml_comments()
    for f in dataclasses.fields(section):
        meaning = documented.get(f"{prefix}.{f.name}") or comments.get(f.name, "")
        yield (
            f"| `{prefix}.{f.name}` | {type_name(hints[f.name])} | `{default_text(getattr(section, f.name))}` | "
            f"{cell(limits.get(f.name, ''))} | {cell(meaning)} |"
        )


def config_page() -> str:
    header = "| key | type | default | allowed | meaning |\n|---|---|---|---|---|"
    defaults = run_config.RunConfig()
    top = recorded(defaults.validate)
    lines = [
        "# Config keys\n",
        "Generated from the config classes (`stream/config/run.py`, `stream/config/serve.py`) when the site is built:",
        "each key's type and default are the dataclass field's, its meaning is the comment beside the field, and",
        "*allowed* is what the class's `validate()` checks (a value outside it is a one-line error naming the key,",
        "exit code 2). `[a, b]` includes both ends, `(a, b]` excludes `a`. Set keys in a YAML file",
        "(`--config FILE`; the bundled `configs/default.yaml` lists them with comments) or on the",
        "command line with `--set KEY=VALUE`, e.g. `--set mask.gamma=0.8`.\n",
        "## Top level\n",
        header,
    ]
    comments = field_comments(run_config.RunConfig)
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            continue
        hint = typing.get_type_hints(run_config.RunConfig)[f.name]
        rule = "; ".join(top.rules.get(f.name, []))
        meaning = yaml_comments().get(f.name) or comments.get(f.name, "")
        lines.append(f"| `{f.name}` | {type_name(hint)} | `{default_text(value)}` | {cell(rule)} | {cell(meaning)} |")
    lines.append("")
    for f in dataclasses.fields(defaults):
        section = getattr(defaults, f.name)
        if not dataclasses.is_dataclass(section):
            continue
        doc = inspect.getdoc(type(section)) or ""
        lines += [f"## `{f.name}`\n", f"{doc}\n", header, *key_rows(section, f.name), ""]
    options = serve_config.ServeOptions()
    lines += [
        "## `serve` (backdrop serve only)\n",
        "A `backdrop serve` config holds every key above as the defaults of its streams, a `streams:` list (each",
        "`{name, source, background, outputs}` plus any `mask`, `encoder` or `pipeline` keys it overrides; see",
        "[Serving many streams](../guide/serve.md)) and this section.\n",
        f"{inspect.getdoc(serve_config.ServeOptions)}\n",
        header,
        *key_rows(options, "serve"),
        "",
    ]
    return "\n".join(lines) + "\n"


def copy_results() -> None:
    """benchmarks/results/ into the site as results/, so pages link the committed plots, JSON and notes."""
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file() and (path.suffix in (".png", ".jpg", ".json") or path.name == "NOTES.md"):
            with mkdocs_gen_files.open(Path("results") / path.relative_to(RESULTS), "wb") as target:
                target.write(path.read_bytes())
    mkdocs_gen_files.set_edit_path("results/NOTES.md", RESULTS.relative_to(REPO) / "NOTES.md")


def main() -> None:
    with mkdocs_gen_files.open("reference/cli.md", "w") as page:
        page.write(cli_page())
    with mkdocs_gen_files.open("reference/config.md", "w") as page:
        page.write(config_page())
    copy_results()


main()
