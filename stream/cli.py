"""The ``backdrop`` console script: subcommands registered by their modules, errors as one line.

Each module in COMMAND_MODULES exposes ``register(subparsers)``, which adds its parser and sets
``handler`` (a function of the parsed arguments returning an exit code). Handlers import heavy
modules lazily, so ``backdrop --help`` and ``backdrop run`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from model.errors import BackdropError

COMMAND_MODULES = ("stream.run_command", "model.cli", "model.train_cli", "benchmarks.cli")
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backdrop", description="Real-time background replacement for video.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter would bury our one-line errors; users can still opt back in.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Connection events (stream lost, reconnected, preview URL) are part of the user interface.
    logging.basicConfig(level=logging.INFO, format="backdrop: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BackdropError as e:
        print(f"backdrop: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("backdrop: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
