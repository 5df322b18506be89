"""The ``backdrop`` console script: every subcommand's module registers its parser, errors become one line.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``handler`` (a function
of the parsed arguments returning an exit code). The modules import heavy libraries only inside their
handlers, so ``backdrop --help`` and ``backdrop run`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from backdrop import __version__
from backdrop.allocator import keep_freed_memory
from backdrop.commands import bench, devices, distill, model, run, serve, train
from backdrop.commands import eval as evaluate
from backdrop.errors import BackdropError

COMMAND_MODULES = (run, serve, devices, model, train, evaluate, distill, bench)
# 0: done. 1 (Python's own): an unexpected exception, a bug. 130/143: stopped by SIGINT/SIGTERM (commands/run.py).
EXIT_ERROR = 2  # bad input, configuration, source or output: one line
EXIT_INTERRUPTED = run.signal_exit_code(signal.SIGINT)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backdrop", description="Real-time background replacement for video.")
    parser.add_argument("--version", action="version", version=f"backdrop {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; without ``argv`` this is the program, which a stopped run ends."""
    # TensorFlow's C++ start-up chatter would bury our one-line errors; users can still opt back in.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keep_freed_memory()  # frame-sized buffers reused, not mapped afresh every frame (backdrop/allocator.py)
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
    except BackdropError as e:
        print(f"backdrop: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("backdrop: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if argv is None:  # the program itself: its outputs are closed, its work is done
        exit_past_lingering_threads(code)
    return code


class OwnerFormatter(logging.Formatter):
    """``backdrop: …`` for our own messages; a library's under its own name (``tensorflow: …``), never as ours."""

    def __init__(self) -> None:
        super().__init__("%(owner)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.owner = record.name.split(".")[0]
        return super().format(record)


def configure_logging() -> None:
    """Our loggers (the ``backdrop`` hierarchy) at INFO: connection events (stream lost, reconnected, preview URL)
    are part of the user interface. Other libraries' only from WARNING, labelled with their names."""
    handler = logging.StreamHandler()
    handler.setFormatter(OwnerFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("backdrop").setLevel(logging.INFO)


def exit_past_lingering_threads(code: int) -> None:
    """Exit now if any other thread is still running. Interpreter shutdown would wait forever for a non-daemon
    one stuck in a call a stop cannot interrupt (a GUI toolkit, a blocked network write), and can crash under a
    daemon one still inside FFmpeg (an abandoned network receiver whose read has not timed out yet)."""
    others = [thread for thread in threading.enumerate() if thread is not threading.current_thread()]
    if any(thread.is_alive() for thread in others):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
