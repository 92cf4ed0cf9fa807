"""Atomic file writes: a reader (or a crash) never sees a half-written file, and nothing old is lost early."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the result the usual permissions
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
    with atomic_open(dst, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out, length=16 << 20)


def atomic_save(path: str | os.PathLike, writer: Callable[[IO], None]) -> None:
    """Binary atomic write through a callback, e.g. ``atomic_save(p, lambda f: torch.save(obj, f))``."""
    with atomic_open(path, "wb") as handle:
        writer(handle)
