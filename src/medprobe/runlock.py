"""One writer per run folder: a lock file that names its holder, released by the kernel on any exit.

`fcntl.flock` on `RUN_FOLDER/.medprobe.lock` is held for the whole run; a process killed with
kill -9 drops it automatically, so a stale lock file (from a crash) never blocks the next run. The
holder's pid is written in the file for the refusal message. Where flock is missing (Windows) the
file is created exclusively and a lock whose pid is no longer alive counts as stale.
"""

from __future__ import annotations

import os
from pathlib import Path

from medprobe.store import LOCK_NAME, storage_errors


class RunLockedError(ValueError):
    """Another live medprobe process is writing this run folder."""


class RunLock:
    """`with RunLock(folder):` hold the folder's writer lock, or raise RunLockedError at once."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        # a read-only or full run folder fails here, before anything is loaded or sent (StorageError)
        with storage_errors(self.path, safe="nothing was written or sent"):
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows
                self._acquire_by_pid()
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._refusal(_read_pid(self.path)) from None
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            except BaseException:
                os.close(fd)
                raise
        self._fd = fd
        return self

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            # the file stays (removing it would race with a waiter that already opened it); the
            # kernel lock is what counts
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None
        elif self.path.exists() and _read_pid(self.path) == os.getpid():  # pragma: no cover - Windows
            self.path.unlink(missing_ok=True)

    def _refusal(self, pid: int | None) -> RunLockedError:
        who = f" (pid {pid})" if pid else ""
        return RunLockedError(f"another medprobe run is writing {self.folder}{who}; wait for it to finish or "
                              "use another --out.")

    def _acquire_by_pid(self) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = _read_pid(self.path)
                if pid is not None and _alive(pid):
                    raise self._refusal(pid) from None
                self.path.unlink(missing_ok=True)  # stale: its writer is gone
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            return
        raise self._refusal(_read_pid(self.path))


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:  # pragma: no cover - Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
