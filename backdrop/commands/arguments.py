"""Arguments, types and hints the commands share: ``--set``, ``-y/--overwrite``, ``--json``, progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from backdrop.errors import ConfigError

TRAIN_EXTRA_HINT = "pip install 'backdrop-video[train]'"


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_set_option(parser: argparse.ArgumentParser, *, scope: str = "any config key") -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"set {scope} as if the --config file said so, e.g. mask.gamma=0.8 or model.interval=auto "
        "(VALUE is YAML: true, 0.8, auto, [a, b]; repeatable)",
    )


def assignments(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``--set``'s (dotted key, value) pairs, parsed in the handler so a malformed one is a one-line error."""
    from backdrop.stream.config.typed_yaml import parse_assignment

    return [parse_assignment(text) for text in args.set]


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--overwrite", action="store_true", help="replace outputs that already exist (as FFmpeg's -y)"
    )


def existing(*places: tuple[str, Path | None]) -> list[str]:
    """ "ROLE PATH already exists" for each (role, path) whose path is there."""
    return [f"{role} {path} already exists" for role, path in places if path is not None and path.exists()]


def refuse_replacing(found: Iterable[str], *, overwrite: bool) -> None:
    """Stop before any work when a command would replace something (each of ``found`` says what), unless
    ``overwrite``: a file is never replaced silently."""
    first = next(iter(found), None)
    if first is not None and not overwrite:
        raise ConfigError(f"{first}: pass -y/--overwrite to replace, or choose another name")


def add_report_options(parser: argparse.ArgumentParser, *, json_help: str) -> None:
    """``--json`` (machine output on stdout instead of the summary) and ``--no-progress``."""
    parser.add_argument("--json", action="store_true", help=json_help)
    add_progress_option(parser)


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr (shown on a terminal)")


def shows_progress(args: argparse.Namespace) -> bool:
    """Progress of a long command goes to stderr only on a terminal, where it does not end up in a log."""
    return not args.no_progress and sys.stderr.isatty()
