"""Atomic file writes: a reader (or a crash) never sees a half-written file, and nothing old is lost early.

A write that fails because the disk is full (or the quota is used up) becomes one :class:`DiskFullError` line that
names the file, the free space and, where known, the space needed; the previous file is left intact.

Temporary names carry their writer, so that debris of a killed process (``kill -9``, a power cut) can be told
from the work of one still running and removed at the next start (:func:`is_stale_temp`)::

    .<final name>.<owner>.<random>.tmp        a file being written (atomic_open)
    .<folder name>.<owner>.<random>.staging   a folder being built (output_dir.staged_output_dir)
    .<folder name>.<owner>.<random>.retired   the previous folder during the swap (output_dir.staged_output_dir)

    <owner> = <pid>-<process start time in clock ticks, 0 where unknown>-<8 hex digits of the host name's SHA-1>

A temp file may repeat its final name's extension after ``.tmp`` (``.tracks.mp4.<owner>.<random>.tmp.mp4``) for
writers that choose the format by the extension (OpenCV's video writer).

e.g. ``.latest_ckpt.pth.4711-982345-1a2b3c4d.k3j_x9ab.tmp``. A temp is stale only when its host is this machine and
its process is gone (or the pid now belongs to a process started at another time); a temp of another machine
(a shared disk) or of a live process is never stale.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from yolox_finetune.core.errors import UserError

#: errors that mean "no room left" rather than a bug.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(UserError):
    """A write ran out of disk space (or quota); the message says where, how much is free and what was needed."""


def current_umask() -> int:
    """The process's umask now (read without changing it where /proc allows, so threads never see it move)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(mode: int) -> int:
    """``mode`` as the user's umask lets a plain ``open``/``mkdir`` create it."""
    return mode & ~current_umask()


#: the kinds of temporary names (the last part of the name).
TEMP_KINDS = ("tmp", "staging", "retired")
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-(?P<start>\d+)-(?P<host>[0-9a-f]{8})\.[a-z0-9_]+"
                        r"\.(?P<kind>" + "|".join(TEMP_KINDS) + r")(?:\.[A-Za-z0-9]{1,8})?$")


@dataclass(frozen=True)
class TempName:
    """What a temporary name says: the final name it stands for, who wrote it, and which kind it is."""

    target: str
    pid: int
    start: int
    host: str
    kind: str


@lru_cache(maxsize=1)
def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _process_start(pid: int) -> tuple[int, bool] | None:
    """(start time in clock ticks since boot, is a zombie) of ``pid`` from /proc; None when it has no entry."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name in parentheses may hold spaces
    return int(fields[19]), fields[0] in ("Z", "X")


def owner_tag() -> str:
    """This process as temporary names record it: pid, start time, host (see the module docstring)."""
    pid = os.getpid()
    started = _process_start(pid)
    return f"{pid}-{started[0] if started else 0}-{_host_tag()}"


def temp_prefix(final_name: str) -> str:
    """The start of a temporary name for ``final_name`` written by this process (random part and kind follow)."""
    return f".{final_name}.{owner_tag()}."


def parse_temp_name(name: str) -> TempName | None:
    """The parts of one of our temporary names, or None when ``name`` is not one."""
    match = _TEMP_NAME.match(name)
    if match is None:
        return None
    return TempName(match["target"], int(match["pid"]), int(match["start"]), match["host"], match["kind"])


def _writer_alive(temp: TempName) -> bool:
    if temp.host != _host_tag():
        return True  # another machine's process (a shared disk): we cannot tell, so it counts as running
    started = _process_start(temp.pid)
    if started is not None:
        ticks, zombie = started
        return not zombie and (temp.start == 0 or ticks == temp.start)  # other ticks: the pid was reused
    if Path("/proc/self/stat").exists():
        return False  # /proc works here and knows no such process
    try:
        os.kill(temp.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temp(path: str | os.PathLike) -> bool:
    """True when ``path`` is one of our temporary names and the process that made it is gone: debris to delete."""
    temp = parse_temp_name(Path(path).name)
    return temp is not None and not _writer_alive(temp)


def _size(num_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(num_bytes) < 1024 or unit == "TiB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} TiB"


def free_bytes(path: str | os.PathLike) -> int:
    """Free space for an unprivileged writer on the file system holding ``path`` (or its nearest parent)."""
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def free_space_text(path: str | os.PathLike) -> str:
    """Free space on the disk holding ``path``, readable (e.g. ``1.2 GiB``)."""
    return _size(free_bytes(path))


def is_no_space(exc: OSError) -> bool:
    """True when ``exc`` says the disk (or the user's quota, or the file size limit) is full."""
    return exc.errno in _NO_SPACE


def disk_full_error(path: str | os.PathLike, need_bytes: int | None = None, kept: bool = True) -> DiskFullError:
    """The one-line error for a full disk at ``path``."""
    path = Path(path)
    need = f", about {_size(need_bytes)} needed" if need_bytes else ""
    previous = f"; the previous {path.name} is intact" if kept and path.exists() else ""
    return DiskFullError(f"no space left to write {path} ({free_space_text(path.parent)} free on that disk"
                         f"{need}){previous}; free some space or write to another disk")


def check_free_space(folder: str | os.PathLike, need_bytes: int, what: str) -> None:
    """Fail before a long job starts when ``folder``'s disk cannot hold the ``need_bytes`` it will write."""
    free = free_bytes(folder)
    if free < need_bytes:
        raise DiskFullError(f"{what} needs about {_size(need_bytes)} in {folder} but that disk has {_size(free)} "
                            f"free; free some space or choose another output folder")


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", need_bytes: int | None = None,
                **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``, on error delete it.
    A full disk raises :class:`DiskFullError` (``need_bytes``, when known, is checked before writing)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if need_bytes is not None and free_bytes(path.parent) < need_bytes:
            raise disk_full_error(path, need_bytes)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if is_no_space(exc):
            raise disk_full_error(path, need_bytes) from None
        raise
    os.chmod(tmp, umask_mode(0o666))  # mkstemp makes 0600 files; give the result the usual permissions
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and is_no_space(exc):
            raise disk_full_error(path, need_bytes) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=indent)
        handle.write("\n")


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a (large) file so that ``dst`` is either the old file or the whole new one."""
    with atomic_open(dst, "wb", need_bytes=os.path.getsize(src)) as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, length=16 << 20)


def atomic_save(path: str | os.PathLike, writer: Callable[[IO], None]) -> None:
    """Binary atomic write through a callback, e.g. ``atomic_save(p, lambda f: torch.save(obj, f))``.

    The bytes are produced in memory first: serializers such as ``torch.save`` report a full disk as an opaque
    RuntimeError mid-stream, while writing known bytes gives a clean check of the space needed up front.
    """
    buffer = io.BytesIO()
    writer(buffer)
    data = buffer.getbuffer()
    with atomic_open(path, "wb", need_bytes=len(data)) as handle:
        handle.write(data)
