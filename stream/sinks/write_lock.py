"""One writer per output: a file sink holds an exclusive lock on its target while it is open.

The lock is a hidden ``.NAME.lock`` file beside the target (in the target's real folder, so two spellings of one
folder share it) holding the writer's process id, for the message a second writer gets. What makes it exclusive
is an OS lock on that file (``flock`` on POSIX, ``msvcrt.locking`` on Windows), not the file's existence: the OS
drops it when the process dies, however it dies, so the lock file of a killed run (SIGKILL, power loss) is taken
over by the next run, and a reused process id cannot keep a stale lock alive. ``release`` removes the file.

A second writer of the same target — another ``backdrop run`` or ``serve``, or another stream of this process —
gets :class:`WriteLocked` when its sink opens, before it looks at the first writer's partial file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from backdrop.errors import SinkError

if sys.platform == "win32":
    import msvcrt

    _FAR = 1 << 30  # Windows locks are mandatory: lock a byte far past the pid, which others must still read

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _FAR, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _FAR, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class WriteLocked(SinkError):
    """Another live writer holds the target."""


def lock_path(target: str | Path) -> Path:
    """``.NAME.lock`` beside ``target``, in its folder's real path (the name itself is not resolved: a file sink
    replaces a symlink by that name rather than writing through it)."""
    absolute = Path(os.path.abspath(target))
    return Path(os.path.realpath(absolute.parent)) / f".{absolute.name}.lock"


class WriteLock:
    """The exclusive right to write ``target``; ``label`` names it in errors (default: ``target`` as given).

    ``acquire`` raises WriteLocked naming the holder's process id when a live writer holds it; ``release`` is
    safe to call twice and when never acquired.
    """

    def __init__(self, target: str | Path, *, label: str | None = None) -> None:
        self.path = lock_path(target)
        self.label = label or str(target)
        self.fd: int | None = None

    def acquire(self) -> None:
        if self.fd is not None:
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            except OSError as e:
                raise SinkError(f"cannot write {self.label}: cannot create {self.path}: {e.strerror or e}") from e
            try:
                if not _try_lock(fd):
                    raise WriteLocked(self._taken_message(fd))
                if self._still_named(fd):  # not a file a releasing holder removed after this process opened it
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.write(fd, str(os.getpid()).encode())
                    self.fd = fd
                    return
            except OSError as e:
                os.close(fd)
                raise SinkError(f"cannot write {self.label}: cannot lock {self.path}: {e.strerror or e}") from e
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # lost a race with a release: lock the file that now has the name

    def _still_named(self, fd: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)

    def _taken_message(self, fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        pid = f"pid {text}" if text.isdigit() else "pid unknown"
        if text == str(os.getpid()):
            return f"{self.label} is being written by another output of this backdrop process ({pid})"
        return f"{self.label} is being written by another backdrop process ({pid})"

    def release(self) -> None:
        """Remove the lock file, then let go (in that order, so no one locks a file about to be removed)."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if sys.platform != "win32":
            with contextlib.suppress(OSError):  # already removed by hand: the OS lock is what counts
                self.path.unlink()
        try:
            with contextlib.suppress(OSError):
                _unlock(fd)
        finally:
            os.close(fd)
        if sys.platform == "win32":  # an open file cannot be removed there; one another writer holds stays
            with contextlib.suppress(OSError):
                self.path.unlink()
