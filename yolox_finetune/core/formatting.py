"""How numbers read in tables, logs and reports: one formatter, so a missing or undefined value (None, NaN, inf)
shows the same everywhere instead of ``nan`` in one place and a crash in another."""

from __future__ import annotations

import math
from typing import Any

#: what stands for a missing or undefined number unless a caller asks for another mark.
NOT_AVAILABLE = "n/a"


def format_number(value: Any, spec: str = ".4g", missing: str = NOT_AVAILABLE) -> str:
    """``format(value, spec)`` for finite numbers, ``missing`` for None/NaN/inf, ``str(value)`` for anything else."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)
