"""Output folders the toolkit owns: marked when written, replaced only when they are its own, swapped in whole.

Every tool that writes a folder leaves a marker file in it (:data:`MARKER`: tool, version, time, command line and
the top-level entries it wrote). A folder may be written to, or replaced with ``--overwrite``, only when it is
missing, empty, or carries the same tool's marker and nothing the marker does not list: a user's dataset, thesis
or notes in the way is one clear error and stays untouched. Folders built from scratch (the converter, the
synthetic generator) are staged beside their final place and swapped in once complete, so a failed or
interrupted run leaves the previous output as it was; final folders get the mode a plain ``mkdir`` would give.

What a killed run (``kill -9``) leaves behind, temp files and staging folders named by
:mod:`yolox_finetune.core.atomic_io`'s pattern, is removed at the next start (:func:`remove_stale_temps`, called by
:func:`check_output_dir` and :func:`claim_output_dir`); temps of a process still running and anything not named by
that pattern are never touched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loguru import logger

from yolox_finetune import __version__
from yolox_finetune.core.atomic_io import (
    DiskFullError,
    atomic_write_json,
    free_space_text,
    is_no_space,
    is_stale_temp,
    parse_temp_name,
    temp_prefix,
    umask_mode,
)
from yolox_finetune.core.errors import UserError

#: the marker file every tool writes into the folder it owns.
MARKER = ".yolox_finetune.json"
#: how many foreign entries an error names.
_SHOWN = 3


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none (or an unreadable one: then it is not ours)."""
    try:
        marker = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != MARKER)


def foreign_entries(folder: str | os.PathLike, tool: str) -> list[str]:
    """Top-level entries of ``folder`` that ``tool`` did not write (all of them without the tool's marker); debris
    of a killed run of ours (stale temps) does not count: the next start removes it."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    entries = [name for name in _entries(folder) if not is_stale_temp(folder / name)]
    marker = read_marker(folder)
    if marker is None or marker.get("tool") != tool:
        return entries
    if marker.get("in_progress"):  # claimed holding only our own files; a run killed since then wrote the rest
        return []
    own = set(marker.get("entries") or ())
    return [name for name in entries if name not in own]


def write_marker(folder: str | os.PathLike, tool: str, entries: Sequence[str] | None = None,
                 in_progress: bool = False) -> Path:
    """Mark ``folder`` as written by ``tool``; ``entries`` defaults to everything in it now. ``in_progress``: the
    tool is still writing (everything that appears until its final marker is its own)."""
    folder = Path(folder)
    listed = sorted(entries) if entries is not None else _entries(folder)
    marker = {"tool": tool, "version": __version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
              "entries": listed}
    if in_progress:
        marker["in_progress"] = True
    atomic_write_json(folder / MARKER, marker)
    return folder / MARKER


def remove_stale_temps(folder: str | os.PathLike, recursive: bool = True, target: str | None = None) -> list[Path]:
    """Delete the debris of killed runs in ``folder`` (and below it unless not ``recursive``): our temp files and
    staging folders whose process is gone (see :mod:`yolox_finetune.core.atomic_io`), only those standing for
    ``target`` when given; returns what was removed. A retired previous output whose final folder is missing
    (killed mid-swap) is put back instead of deleted. One log line says what was removed; nothing else is
    touched."""
    folder = Path(folder)
    removed: list[Path] = []
    restored: list[Path] = []
    if not folder.is_dir():
        return removed
    for parent, dirs, files in os.walk(folder):
        parent = Path(parent)
        for name in sorted(files + dirs):
            path = parent / name
            temp = parse_temp_name(name)
            if temp is None or (target is not None and temp.target != target) or not is_stale_temp(path):
                continue
            if name in dirs:
                dirs.remove(name)  # nothing below debris is walked
                final = parent / temp.target
                kept = path / temp.target
                if temp.kind == "retired" and kept.is_dir() and not final.exists() and not final.is_symlink():
                    os.replace(kept, final)  # the previous output, moved aside just before the kill
                    restored.append(final)
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        if not recursive:
            break
    if removed:
        shown = ", ".join(str(p.relative_to(folder)) for p in removed[:_SHOWN])
        more = f" and {len(removed) - _SHOWN} more" if len(removed) > _SHOWN else ""
        back = f"; put back the previous {', '.join(map(str, restored))}" if restored else ""
        logger.info(f"removed {len(removed)} leftover temporary file(s) of an interrupted earlier run in {folder}: "
                    f"{shown}{more}{back}")
    return removed


def _refuse_foreign(out: Path, tool: str, foreign: list[str], flag: str) -> None:
    shown = ", ".join(foreign[:_SHOWN]) + (f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else "")
    owner = read_marker(out)
    whose = f"written by {owner['tool']}" if owner and owner.get("tool") and owner["tool"] != tool else \
        f"not written by {tool}"
    raise UserError(f"{flag} refused: {out} holds files {whose} ({shown}); nothing was touched; choose another "
                    f"--out (an empty or new folder)")


def check_output_dir(out: str | os.PathLike, tool: str, overwrite: bool, protected: Sequence[Path] = ()) -> Path:
    """Resolve ``out`` for a tool that replaces the whole folder; refuse what it must not replace.

    ``protected`` lists source folders: ``out`` may not be one of them, contain one, or lie inside one. An existing
    non-empty ``out`` needs ``overwrite`` and must be the same tool's own folder with nothing else in it.
    """
    out = Path(out).expanduser().resolve()
    for source in protected:
        source = Path(source).resolve()
        if _is_within(source, out) or _is_within(out, source):
            raise UserError(f"output folder {out} overlaps the source {source}; pass an --out outside the dataset")
    remove_stale_temps(out.parent, recursive=False, target=out.name)  # staging of a killed run beside out
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file; pass --out with a folder path")
    if out.is_dir() and any(out.iterdir()):
        foreign = foreign_entries(out, tool)
        if not foreign:
            remove_stale_temps(out)
        if not overwrite and any(out.iterdir()):
            own = "" if foreign else f" (written by {tool} earlier)"
            raise UserError(f"output folder {out} already exists{own}; pass --overwrite to replace it or choose "
                            f"another --out")
        if foreign:
            _refuse_foreign(out, tool, foreign, "--overwrite")
    return out


def claim_output_dir(out: str | os.PathLike, tool: str, inputs: Sequence[str | os.PathLike | None] = ()) -> Path:
    """Resolve ``out`` for a tool that writes its files into the folder in place (reports, results, sweeps):
    create it, or reuse it when it is this tool's own; refuse an input folder or one holding anything else.
    The folder is marked "in progress" at once, so that a run killed before it ends leaves a folder its rerun
    accepts; call :func:`write_marker` once the files are written."""
    out = Path(out).expanduser().resolve()
    for given in inputs:
        if given is not None and Path(given).resolve() == out:
            raise UserError(f"--out {out} is also an input folder; choose a separate output folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file; pass --out with a folder path")
    foreign = foreign_entries(out, tool)
    if foreign:
        _refuse_foreign(out, tool, foreign, "writing")
    remove_stale_temps(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, tool, in_progress=True)
    return out


@contextmanager
def staged_output_dir(out: Path, tool: str) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; on success it is marked as ``tool``'s and replaces ``out``
    (the old folder is removed only after the swap); on error it is deleted and ``out`` stays as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".staging", dir=out.parent))
    try:
        yield staging
        write_marker(staging, tool)
        os.chmod(staging, umask_mode(0o777))  # mkdtemp makes 0700 folders; give the result the usual mode
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and is_no_space(exc):
            kept = f"; the previous {out} is intact" if out.exists() else ""
            raise DiskFullError(f"no space left while writing {out} ({free_space_text(out.parent)} free on that "
                                f"disk){kept}; free some space or choose another --out") from None
        raise
    retired = None
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=temp_prefix(out.name), suffix=".retired", dir=out.parent))
        os.replace(out, retired / out.name)
    try:
        os.replace(staging, out)
    except BaseException:
        if retired is not None:  # put the previous output back
            os.replace(retired / out.name, out)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)
