"""One writer per folder: a run, a fine-tune or a prepared-data folder is written by one es-zoo command
at a time.

The lock is ``FOLDER/.lock``, held with ``fcntl.flock`` for as long as the command runs: the kernel
releases it when the process ends in any way (a crash, ``kill -9``, a reboot), so a lock left by a
dead process is taken over without anyone deleting anything. The file holds who has it (pid, host,
command, start time) so that a refusal can say so. The file itself stays (removing it would let two
processes lock two different files); every folder check ignores it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

from es_zoo.errors import EsZooError

LOCK_NAME = ".lock"


class FolderBusy(EsZooError):
    """Another es-zoo process is writing this folder right now."""


class FolderLock:
    """An exclusive lock on ``folder/.lock``; ``release()`` (or the end of the process) frees it.

    Example:
        >>> import tempfile
        >>> with FolderLock(tempfile.mkdtemp(), "a test") as lock:
        ...     lock.held
        True
    """

    def __init__(self, folder: str | Path, what: str) -> None:
        import fcntl

        self.path = Path(folder) / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                owner = json.loads(os.read(fd, 4096).decode("utf-8", "replace") or "{}")
            except ValueError:
                owner = {}
            os.close(fd)
            who = (f"{owner.get('command', 'another es-zoo command')} (pid {owner.get('pid', '?')} on "
                   f"{owner.get('host', '?')}, since {owner.get('started', '?')})")
            raise FolderBusy(f"{folder} is being written by {who}; wait for it to finish or stop it, then "
                             f"run {what} again (a lock whose process has ended is taken over by itself)") from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command(),
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.write(fd, json.dumps(info).encode())
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _command() -> str:
    return "`" + " ".join(["es-zoo", *sys.argv[1:3]])[:120] + "`"


def only_lock(folder: Path) -> bool:
    """``folder`` holds nothing but (possibly) the lock file."""
    return folder.is_dir() and all(p.name == LOCK_NAME for p in folder.iterdir())


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command created above its output folder (innermost first; a folder
    something else wrote into meanwhile stays)."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """Create ``out`` (and its parents) for a command; if the command fails before writing anything into
    it, remove what this created, so a failed command leaves the disk as it found it."""
    created = not out.exists()
    new_parents = [a for a in out.absolute().parents if not a.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    except BaseException:
        if created and only_lock(out):
            shutil.rmtree(out, ignore_errors=True)
            remove_empty(new_parents)
        raise
