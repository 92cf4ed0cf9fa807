"""Build an output folder beside its final place and swap it in at the end.

A failed or interrupted conversion leaves the previous output untouched; ``--overwrite`` only replaces it once the
new one is complete. The source dataset is never written to.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from yolox_finetune.core.errors import UserError


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def check_output_dir(out: str | Path, overwrite: bool, protected: list[Path] = ()) -> Path:
    """Resolve ``out`` and refuse it when it exists (non-empty) without ``overwrite`` or would clobber a protected path.

    ``protected`` lists source folders: ``out`` may not be one of them, contain one, or lie inside one.
    """
    out = Path(out).expanduser().resolve()
    for source in protected:
        source = Path(source).resolve()
        if _is_within(source, out) or _is_within(out, source):
            raise UserError(f"output folder {out} overlaps the source {source}; pass an --out outside the dataset")
    if out.exists() and not out.is_dir():
        raise UserError(f"output path {out} is a file; pass --out with a folder path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} already exists; pass --overwrite to replace it or choose another --out")
    return out


@contextmanager
def staged_output_dir(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out``; on success it replaces ``out``, on error it is deleted."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = None
    if out.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
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
