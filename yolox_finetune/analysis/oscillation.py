"""How much does the training loss oscillate? Numbers that let two schedules be compared honestly.

The question users ask is "did the V2 schedule really make training smoother, and by how much?". Eyeballing two
noisy curves does not answer it, so the total loss of a run is split into a *trend* and a *residual*:

- trend: a centred rolling median over ``window`` logged points (the window shrinks at the ends of the series).
  A median, not a mean or an EMA: it follows real steps (the L1 loss switching on at the no-aug start, a
  layer group unfreezing) without smearing them into the residual, ignores single spikes, and has no lag.
- residual RSD: the relative standard deviation around the trend, i.e. the root mean square of
  ``(loss - trend) / trend`` (deviations from the trend, not from their own mean, so a trend that misses a level
  shift counts as oscillation), in percent. For ``loss = trend * (1 + s * N(0, 1))`` it estimates ``s``.
- jump share: the share of logged steps whose loss differs from the *previous logged value* by more than
  ``jump_fraction`` (default 0.2 = 20 %) of that previous value, in percent.
- slope: the least-squares straight-line fit of the raw loss against the global iteration, in loss units per
  1000 iterations (negative = still going down).

All statistics are on the logged points (one every ``print_interval`` iterations), not on every iteration.
Non-finite losses (a diverged step) are dropped and counted, never allowed to poison the averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from yolox_finetune.core.formatting import NOT_AVAILABLE
from yolox_finetune.core.formatting import format_number as _fmt

#: a step counts as a jump when it moves the loss by more than this fraction of the previous logged value.
DEFAULT_JUMP_FRACTION = 0.2


@dataclass(frozen=True)
class OscillationStats:
    """Oscillation statistics of one stretch of a loss series (a whole run or one epoch)."""

    points: int  # finite logged points used
    dropped: int  # non-finite points ignored
    residual_rsd_pct: float  # root mean square of (loss - trend) / trend, in percent
    jump_share_pct: float  # share of steps jumping by more than jump_fraction, in percent
    slope_per_1k: float  # least-squares slope of the loss, per 1000 iterations
    mean_loss: float
    jump_fraction: float

    def as_dict(self) -> dict:
        return asdict(self)


def default_window(points: int) -> int:
    """An odd trend window: about 1/20 of the series, 11 to 51 logged points, but at most a third of a short series
    (so a handful of points still gets a trend that moves)."""
    window = min(max(11, min(51, points // 20)), max(3, points // 3))
    return window if window % 2 else window + 1


def rolling_median(values: Sequence[float], window: int) -> np.ndarray:
    """Centred rolling median; the window shrinks symmetrically near the ends so the trend has no lag there."""
    values = np.asarray(values, dtype=float)
    half = max(0, int(window) // 2)
    n = len(values)
    if n == 0:
        return values.copy()
    padded = np.full(n + 2 * half, np.nan)
    padded[half : half + n] = values
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.nanmedian(windows, axis=1)


def _finite(iters: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    keep = np.isfinite(values) & np.isfinite(iters)
    return iters[keep], values[keep], int((~keep).sum())


def _stats(iters: np.ndarray, values: np.ndarray, trend: np.ndarray, prev: np.ndarray, dropped: int,
           jump_fraction: float) -> OscillationStats:
    """Statistics of points ``values`` (with their trend and their previous logged value, NaN if none)."""
    n = len(values)
    nan = float("nan")
    if n == 0:
        return OscillationStats(0, dropped, nan, nan, nan, nan, jump_fraction)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = (values - trend) / trend
    relative = relative[np.isfinite(relative)]
    rsd = float(np.sqrt(np.mean(relative**2)) * 100) if len(relative) >= 3 else nan
    has_prev = np.isfinite(prev) & (prev != 0)
    if has_prev.any():
        jumps = np.abs(values[has_prev] - prev[has_prev]) > jump_fraction * np.abs(prev[has_prev])
        jump_share = float(jumps.mean() * 100)
    else:
        jump_share = nan
    slope = nan
    if n >= 2 and np.ptp(iters) > 0:
        slope = float(np.polyfit(iters, values, 1)[0] * 1000)
    return OscillationStats(n, dropped, rsd, jump_share, slope, float(np.mean(values)), jump_fraction)


def oscillation_stats(global_iters: Sequence[float], losses: Sequence[float], window: int | None = None,
                      jump_fraction: float = DEFAULT_JUMP_FRACTION) -> OscillationStats:
    """Oscillation statistics of a whole loss series (points in training order)."""
    iters, values, dropped = _finite(np.asarray(global_iters, float), np.asarray(losses, float))
    trend = rolling_median(values, window or default_window(len(values)))
    prev = np.concatenate([[np.nan], values[:-1]])
    return _stats(iters, values, trend, prev, dropped, jump_fraction)


def oscillation_by_epoch(epochs: Sequence[int], global_iters: Sequence[float], losses: Sequence[float],
                         window: int | None = None,
                         jump_fraction: float = DEFAULT_JUMP_FRACTION) -> dict[int, OscillationStats]:
    """Per-epoch statistics. The trend is taken over the whole run, so epoch edges add no edge effects;
    a jump is counted in the epoch of the point that jumped (the first point of an epoch compares with the
    last one of the previous epoch)."""
    epochs = np.asarray(epochs)
    raw_iters = np.asarray(global_iters, float)
    raw_values = np.asarray(losses, float)
    keep = np.isfinite(raw_values) & np.isfinite(raw_iters)
    iters, values, kept_epochs = raw_iters[keep], raw_values[keep], epochs[keep]
    trend = rolling_median(values, window or default_window(len(values)))
    prev = np.concatenate([[np.nan], values[:-1]])
    result = {}
    for epoch in sorted(set(int(e) for e in epochs)):
        mask = kept_epochs == epoch
        dropped = int(((epochs == epoch) & ~keep).sum())
        result[epoch] = _stats(iters[mask], values[mask], trend[mask], prev[mask], dropped, jump_fraction)
    return result


def _relative_change(value: float, reference: float) -> str:
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return NOT_AVAILABLE
    return f"{(value - reference) / abs(reference) * 100:+.0f}%"


def comparison_line(name: str, stats: OscillationStats, reference_name: str, reference: OscillationStats) -> str:
    """One line comparing a run with the reference run, e.g.
    ``smooth_v2 vs base: residual RSD 4.1% vs 7.9% (-48%); jumps >20%: 1.0% vs 6.2% (-84%); slope ...``."""
    pct = f"{stats.jump_fraction * 100:g}"
    return (
        f"{name} vs {reference_name}: "
        f"residual RSD {_fmt(stats.residual_rsd_pct, '.1f')}% vs {_fmt(reference.residual_rsd_pct, '.1f')}% "
        f"({_relative_change(stats.residual_rsd_pct, reference.residual_rsd_pct)}); "
        f"jumps >{pct}%: {_fmt(stats.jump_share_pct, '.1f')}% vs {_fmt(reference.jump_share_pct, '.1f')}% "
        f"({_relative_change(stats.jump_share_pct, reference.jump_share_pct)}); "
        f"slope {_fmt(stats.slope_per_1k, '+.3g')} vs {_fmt(reference.slope_per_1k, '+.3g')} per 1k iters"
    )
