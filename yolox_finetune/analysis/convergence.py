"""Is a run still improving? A verdict with its uncertainty, not the sign of one straight line over the whole run.

A single least-squares slope over 30 epochs is negative for a loss that stopped falling at epoch 10. Instead, per
series, the change over the *last N epochs* is compared with how much it could move by chance:

- training loss: the change of the epoch-mean loss between epoch E-N and the last epoch E. Its standard error
  comes from the within-epoch noise: the scatter of the logged points around the trend
  (:func:`.oscillation.relative_residual`), divided by the square root of the effective number of points
  (``n (1 - r) / (1 + r)`` with ``r`` the lag-1 autocorrelation, so a slow wave is not mistaken for n independent
  draws).
- validation loss and AP (one value per epoch, no within-epoch points): the epoch-to-epoch noise, estimated
  robustly from second differences of the series (``1.4826 MAD / sqrt(6)``, blind to a straight trend).

The verdict at 95 % (change +- 1.96 standard errors): "falling" when the interval lies below 0, "rising" above
0, "flat within noise" when it contains 0. "still" marks the improving direction (falling loss, rising AP).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from yolox_finetune.analysis.oscillation import epoch_of

#: default number of epochs the change is taken over.
DEFAULT_LAST_EPOCHS = 3
_Z95 = 1.959964


@dataclass(frozen=True)
class Convergence:
    """Change of one series over its last epochs, its 95 % interval and the verdict."""

    series: str
    from_epoch: int | None
    to_epoch: int | None
    start: float  # the series' value at from_epoch (epoch mean for the training loss)
    end: float
    change: float
    ci_low: float
    ci_high: float
    verdict: str
    noise_from: str  # how the standard error was estimated

    @property
    def relative_change_pct(self) -> float:
        if not (math.isfinite(self.change) and math.isfinite(self.start)) or self.start == 0:
            return math.nan
        return self.change / abs(self.start) * 100

    def as_dict(self) -> dict:
        return {**asdict(self), "relative_change_pct": self.relative_change_pct}


def verdict(change: float, se: float, higher_is_better: bool = False) -> str:
    """"falling" / "rising" when the 95 % interval excludes 0, else "flat within noise"; "still" on the improving
    side; "too few epochs" when there is nothing to judge."""
    if not (math.isfinite(change) and math.isfinite(se)):
        return "too few epochs"
    low, high = change - _Z95 * se, change + _Z95 * se
    if low <= 0 <= high:
        return "flat within noise"
    direction = "rising" if low > 0 else "falling"
    improving = direction == ("rising" if higher_is_better else "falling")
    return f"still {direction}" if improving else direction


def _result(series: str, first: int | None, last: int | None, start: float, end: float, se: float,
            noise_from: str, higher_is_better: bool) -> Convergence:
    change = end - start
    ok = math.isfinite(change) and math.isfinite(se)
    return Convergence(series, first, last, start, end, change, change - _Z95 * se if ok else math.nan,
                       change + _Z95 * se if ok else math.nan, verdict(change, se, higher_is_better), noise_from)


def _effective_n(residual: np.ndarray) -> float:
    n = len(residual)
    if n < 3:
        return float(n)
    centred = residual - residual.mean()
    denom = float(np.sum(centred**2))
    r = float(np.sum(centred[1:] * centred[:-1]) / denom) if denom > 0 else 0.0
    r = min(max(r, 0.0), 0.99)
    return max(1.0, n * (1 - r) / (1 + r))


def training_loss_convergence(x_epochs: np.ndarray, values: np.ndarray, trend: np.ndarray,
                              last_epochs: int = DEFAULT_LAST_EPOCHS, series: str = "train total loss",
                              ) -> Convergence:
    """Change of the epoch-mean loss over the last ``last_epochs`` epochs, its standard error from the within-epoch
    scatter around ``trend`` (finite points only, as :func:`.oscillation.relative_residual` returns them)."""
    epochs = epoch_of(x_epochs)
    present = sorted(set(epochs.tolist()))
    noise = "within-epoch scatter of the logged points around the trend (autocorrelation-corrected)"
    if len(present) < 2:
        return _result(series, None, None, math.nan, math.nan, math.nan, noise, False)
    last = present[-1]
    first = max([e for e in present if e <= last - last_epochs] or [present[0]])

    def mean_and_se(epoch: int) -> tuple[float, float]:
        mask = epochs == epoch
        residual = values[mask] - trend[mask]
        sd = float(np.std(residual, ddof=1)) if mask.sum() > 1 else math.nan
        return float(values[mask].mean()), sd / math.sqrt(_effective_n(residual))

    (start, se_start), (end, se_end) = mean_and_se(first), mean_and_se(last)
    return _result(series, first, last, start, end, math.hypot(se_start, se_end), noise, False)


def epoch_series_convergence(epochs: Sequence[int], values: Sequence[float], series: str,
                             higher_is_better: bool = False,
                             last_epochs: int = DEFAULT_LAST_EPOCHS) -> Convergence:
    """Change of a once-per-epoch series (val loss, AP) over the last ``last_epochs`` epochs; its standard error
    from the epoch-to-epoch noise (robust scatter of second differences)."""
    pairs = [(int(e), float(v)) for e, v in zip(epochs, values) if math.isfinite(float(v))]
    noise = "epoch-to-epoch scatter of the series (median absolute second difference)"
    if len(pairs) < 2:
        return _result(series, None, None, math.nan, math.nan, math.nan, noise, higher_is_better)
    by_epoch = dict(pairs)
    last = pairs[-1][0]
    first = max([e for e in by_epoch if e <= last - last_epochs] or [pairs[0][0]])
    series_values = np.array([v for _, v in pairs])
    se = math.nan
    if len(series_values) >= 4:
        second = np.diff(series_values, 2)
        sigma = 1.4826 * float(np.median(np.abs(second - np.median(second)))) / math.sqrt(6)
        se = sigma * math.sqrt(2)
    return _result(series, first, last, by_epoch[first], by_epoch[last], se, noise, higher_is_better)
