"""How much does the training loss oscillate? One measure that does not depend on how the run was logged.

The question users ask is "did the V2 schedule really make training smoother, and by how much?". The answer must
not change with the logging interval, the batch size or the length of the run, so everything here is measured on
a *common axis*, the epoch (images seen / images per epoch), never on logged points or the global iteration:

- trend: a Hann-weighted local straight-line fit over a window of ``window`` epochs (points within +-window/2
  on the axis, so gaps and any logging interval give the same trend), split at the schedule's events (phase
  starts, no-aug start) so a step in the loss there (the L1 loss switching on) is followed, not smeared. A
  symmetric weighting follows a straight trend exactly, and a zero-mean wave of period <= window/2.5 leaks less
  than 3 % into it (a running median would not: it is biased by skewed or coarsely sampled waves).
- residual RSD: the root mean square of ``(loss - trend) / trend`` in percent, taken only where the whole window
  fits (the first and last ``window / 2`` epochs and +-window/2 around events are left out: a truncated window
  follows the oscillation). A sinusoid of relative amplitude ``a`` and period up to ``window / 3`` reads
  ``a / sqrt(2)``; slower waves are progressively counted as trend. Noise ``N(0, s)`` reads ``s``.
- dominant period and amplitude: Welch's spectral estimate (scipy.signal.welch, Hann window, segments of one
  trend window) of the relative residual resampled on a uniform epoch grid; the period is the peak's
  (parabolic interpolation), the amplitude ``sqrt(2 * power within +-2 bins of the peak)``, and the peak share
  the fraction of the residual's variance in that band (white noise spreads evenly; a wave concentrates).
  A wave faster than twice the logging interval is seen at its aliased period, its RSD is still right.

Non-finite losses (a diverged step) are dropped and counted, never allowed to poison the averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import welch

from yolox_finetune.core.formatting import NOT_AVAILABLE
from yolox_finetune.core.formatting import format_number as _fmt

#: default trend window, in epochs.
DEFAULT_WINDOW_EPOCHS = 3.0
#: how the measure is defined, for analysis.json and the report.
METHOD = ("trend: Hann-weighted local linear fit over a window of W epochs on the epoch axis (images seen / "
          "images per epoch), split at phase starts and the no-aug start; residual RSD: RMS of (loss - trend) / "
          "trend where the whole window fits (first and last W/2 epochs and +-W/2 around those events excluded); "
          "dominant period and amplitude: Welch spectrum (scipy.signal.welch, Hann, segments of W epochs) of the "
          "relative residual on a uniform epoch grid, amplitude = sqrt(2 x power within +-2 bins of the peak)")
_ANCHORS_PER_WINDOW = 20
_PEAK_HALF_BINS = 2


@dataclass(frozen=True)
class OscillationStats:
    """Oscillation statistics of one stretch of a loss series, all in epoch units (images where known)."""

    points: int  # finite points the residual RSD was taken over
    dropped: int  # non-finite points ignored
    residual_rsd_pct: float  # RMS of (loss - trend) / trend, in percent
    period_epochs: float  # dominant period of the residual (Welch peak)
    amplitude_pct: float  # amplitude of that periodic component, in percent of the trend
    peak_share_pct: float  # share of the residual variance in the peak band
    window_epochs: float  # trend window actually used
    span_start: float  # stretch of the epoch axis the statistics cover
    span_end: float
    mean_loss: float
    images_per_epoch: float | None = None

    @property
    def period_images(self) -> float:
        return self.period_epochs * self.images_per_epoch if self.images_per_epoch else math.nan

    @property
    def window_images(self) -> float:
        return self.window_epochs * self.images_per_epoch if self.images_per_epoch else math.nan

    def as_dict(self) -> dict:
        return {**asdict(self), "period_images": self.period_images, "window_images": self.window_images}


def _local_linear(x: np.ndarray, values: np.ndarray, window: float) -> np.ndarray:
    """Trend of one segment: Hann-weighted local straight-line fits over ``window``, evaluated at anchors
    ``window / 20`` apart and interpolated linearly (truncated windows at the segment's ends)."""
    if len(x) < 3 or x[-1] <= x[0]:
        return np.full(len(x), float(np.mean(values)) if len(values) else math.nan)
    half = window / 2
    anchors = np.append(np.arange(x[0], x[-1], window / _ANCHORS_PER_WINDOW), x[-1])
    lo = np.searchsorted(x, anchors - half, side="left")
    hi = np.searchsorted(x, anchors + half, side="right")
    fitted = np.full(len(anchors), np.nan)
    for i, (anchor, a, b) in enumerate(zip(anchors, lo, hi)):
        d = x[a:b] - anchor
        w = 0.5 * (1 + np.cos(np.pi * np.clip(d / half, -1, 1))) + 1e-12
        y = values[a:b]
        d_mean, y_mean = np.average(d, weights=w), np.average(y, weights=w)
        spread = float(np.sum(w * (d - d_mean) ** 2))
        slope = float(np.sum(w * (d - d_mean) * (y - y_mean)) / spread) if spread > 0 else 0.0
        fitted[i] = y_mean - slope * d_mean
    return np.interp(x, anchors, fitted)


def running_trend(x: Sequence[float], values: Sequence[float], window: float,
                  breaks: Sequence[float] = ()) -> np.ndarray:
    """Trend of ``values`` at ascending positions ``x``: a Hann-weighted local linear fit over ``window`` (a
    symmetric weighting, so a straight trend is followed exactly and a wave of period <= window/2.5 leaks < 3 %
    into it). ``breaks`` (schedule events: phase starts, no-aug start) split the series, so a step in the loss
    there is followed instead of being smeared into the residual."""
    x, values = np.asarray(x, float), np.asarray(values, float)
    trend = np.full(len(x), np.nan)
    edges = [0, *sorted({int(np.searchsorted(x, b, side="right")) for b in breaks}), len(x)]
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            trend[a:b] = _local_linear(x[a:b], values[a:b], window)
    return trend


def _finite(x: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray, int]:
    x, values = np.asarray(x, float), np.asarray(values, float)
    keep = np.isfinite(values) & np.isfinite(x)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], values[keep][order], int((~keep).sum())


def effective_window(window: float, span: float) -> float:
    """The trend window, at most a third of the span so that a third of the run is left to measure."""
    return float(min(window, span / 3)) if span > 0 else float(window)


def dominant_oscillation(x: np.ndarray, relative: np.ndarray, window: float) -> tuple[float, float, float]:
    """``(period, amplitude, peak share)`` of a relative residual from Welch's estimate (period in x units,
    amplitude and share as fractions); NaN when there are too few points."""
    nan = (math.nan, math.nan, math.nan)
    if len(x) < 16 or x[-1] <= x[0]:
        return nan
    dx = float(np.median(np.diff(x)))
    if dx <= 0:
        return nan
    grid = np.arange(x[0], x[-1] + dx / 2, dx)
    series = np.interp(grid, x, relative)
    nperseg = int(min(len(series), max(16, round(window / dx))))
    freqs, power = welch(series, fs=1.0 / dx, window="hann", nperseg=nperseg, detrend="constant",
                         scaling="density")
    if len(freqs) < 3:
        return nan
    df = float(freqs[1] - freqs[0])
    k = int(np.argmax(power[1:]) + 1)
    band = power[max(1, k - _PEAK_HALF_BINS): k + _PEAK_HALF_BINS + 1]
    total = float(power[1:].sum() * df)
    peak_power = float(band.sum() * df)
    f_peak = freqs[k]
    if 1 <= k < len(power) - 1 and np.all(power[k - 1: k + 2] > 0):  # parabolic interpolation on log power
        a, b, c = np.log(power[k - 1: k + 2])
        denom = a - 2 * b + c
        if denom < 0:
            f_peak = freqs[k] + 0.5 * (a - c) / denom * df
    period = 1.0 / f_peak if f_peak > 0 else math.nan
    share = peak_power / total if total > 0 else math.nan
    return period, math.sqrt(2 * peak_power), share


def _measurable(x: np.ndarray, window: float, breaks: Sequence[float]) -> np.ndarray:
    """Points whose whole trend window lies inside the series and inside one segment between breaks; when that
    leaves fewer than a quarter of the points (many events in a short run), only the series' ends are cut."""
    half = window / 2
    inside = (x >= x[0] + half) & (x <= x[-1] - half)
    away = inside.copy()
    for b in breaks:
        away &= np.abs(x - b) >= half
    return away if away.sum() >= len(x) / 4 else inside


def oscillation_stats(x_epochs: Sequence[float], losses: Sequence[float],
                      window_epochs: float = DEFAULT_WINDOW_EPOCHS, span: tuple[float, float] | None = None,
                      images_per_epoch: float | None = None, breaks: Sequence[float] = ()) -> OscillationStats:
    """Oscillation statistics of a loss series on the epoch axis. ``span`` limits the stretch that is measured
    (for comparing runs on their common epochs; the trend is taken over that stretch only); ``breaks`` are the
    epochs where the schedule changes (phase starts, no-aug start)."""
    x, values, dropped = _finite(x_epochs, losses)
    if span is not None:
        inside = (x >= span[0]) & (x <= span[1])
        x, values = x[inside], values[inside]
    nan = math.nan
    start, end = (float(x[0]), float(x[-1])) if len(x) else (nan, nan)
    if len(x) < 3:
        return OscillationStats(len(x), dropped, nan, nan, nan, nan, float(window_epochs), start, end,
                                float(np.mean(values)) if len(values) else nan, images_per_epoch)
    window = effective_window(window_epochs, end - start)
    breaks = [b for b in breaks if start < b < end]
    trend = running_trend(x, values, window, breaks)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = (values - trend) / trend
    usable = _measurable(x, window, breaks) & np.isfinite(relative)
    rsd = float(np.sqrt(np.mean(relative[usable] ** 2)) * 100) if usable.sum() >= 3 else nan
    period, amplitude, share = dominant_oscillation(x[usable], relative[usable], window)
    return OscillationStats(int(usable.sum()), dropped, rsd, period, amplitude * 100, share * 100, window,
                            start, end, float(np.mean(values)), images_per_epoch)


def relative_residual(x_epochs: Sequence[float], losses: Sequence[float],
                      window_epochs: float = DEFAULT_WINDOW_EPOCHS,
                      breaks: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, loss, trend, (loss - trend) / trend)`` of the finite points, for plots and the convergence verdict."""
    x, values, _ = _finite(x_epochs, losses)
    if len(x) == 0:
        return x, values, values, values
    trend = running_trend(x, values, effective_window(window_epochs, float(x[-1] - x[0])), breaks)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x, values, trend, (values - trend) / trend


def epoch_of(x_epochs: np.ndarray) -> np.ndarray:
    """The 1-based epoch a point on the epoch axis belongs to (global_iter / iters_per_epoch in (e-1, e])."""
    return np.maximum(1, np.ceil(np.asarray(x_epochs, float) - 1e-9)).astype(int)


def oscillation_by_epoch(x_epochs: Sequence[float], losses: Sequence[float],
                         window_epochs: float = DEFAULT_WINDOW_EPOCHS,
                         breaks: Sequence[float] = ()) -> dict[int, float]:
    """Residual RSD (percent) per epoch, around the trend of the whole run (the first and last window/2 epochs
    have a truncated trend window and read low when the loss oscillates slowly)."""
    x, _, _, relative = relative_residual(x_epochs, losses, window_epochs, breaks)
    epochs = epoch_of(x)
    result = {}
    for epoch in sorted(set(epochs.tolist())):
        r = relative[(epochs == epoch) & np.isfinite(relative)]
        result[int(epoch)] = float(np.sqrt(np.mean(r**2)) * 100) if len(r) >= 3 else math.nan
    return result


def _relative_change(value: float, reference: float) -> str:
    if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
        return NOT_AVAILABLE
    return f"{(value - reference) / abs(reference) * 100:+.0f}%"


def _pct(value: float) -> str:
    text = _fmt(value, ".2f")
    return text if text == NOT_AVAILABLE else text + "%"


def comparison_line(name: str, stats: OscillationStats, reference_name: str, reference: OscillationStats) -> str:
    """One line comparing a run with the reference run on the same window and span, e.g.
    ``smooth_v2 vs base: residual RSD 4.1% vs 7.9% (-48%); window 3 epochs; epochs 0-12``."""
    return (
        f"{name} vs {reference_name}: "
        f"residual RSD {_pct(stats.residual_rsd_pct)} vs {_pct(reference.residual_rsd_pct)} "
        f"({_relative_change(stats.residual_rsd_pct, reference.residual_rsd_pct)}); "
        f"dominant period {_fmt(stats.period_epochs, '.3g')} vs {_fmt(reference.period_epochs, '.3g')} epochs; "
        f"same trend window {_fmt(stats.window_epochs, '.3g')} epochs"
        + (f" ({_fmt(stats.window_images, ',.0f')} images)" if stats.images_per_epoch else "")
        + f", same span: epochs {_fmt(stats.span_start, '.2f')} to {_fmt(stats.span_end, '.2f')}"
    )
