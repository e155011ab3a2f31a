"""One writer per shard directory: a lock file that names its holder.

``annotations/<name>/.lock`` (and ``packed/.lock``) is created exclusively (``O_CREAT | O_EXCL``)
and holds the holder's host, pid, start time and command line as JSON. A second run on the same
directory refuses with :class:`StageLockedError` naming the holder. A lock whose holder is a dead
process on this host is stale and taken over; a lock from another host is never taken over
(remove it by hand once that run is known to be gone).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK = ".lock"


class StageLockedError(RuntimeError):
    """Another live run holds the directory's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder_text(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {started} ({holder.get('command', '?')})"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # a lock file its writer did not finish: treated as held by an unknown process


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold ``directory``'s lock for the block (the directory is created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if holder is None:
                continue  # released meanwhile: try again
            stale = holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _alive(holder["pid"])
            if not stale:
                who = _holder_text(holder) if holder else "an unknown process (unreadable lock file)"
                raise StageLockedError(f"{directory} is being written by {who}; wait for it, or remove {path} if that run is gone") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a dead process's lock: take it over
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise StageLockedError(f"{directory}: could not take the lock {path} (another run keeps taking it)")
    try:
        yield path
    finally:
        if (_read(path) or {}).get("pid") == me["pid"]:
            path.unlink()
