"""The oscillation measure recovers planted waves and noise whatever the period, logging interval or run length."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yolox_finetune.analysis.oscillation import (
    comparison_line,
    oscillation_by_epoch,
    oscillation_stats,
    running_trend,
)

IPE = 2000  # iterations per epoch


def planted(period_iters: float, interval: int, epochs: int, amplitude: float = 0.05, noise: float = 0.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A decaying loss times (1 + amplitude sin + noise N(0, 1)), logged every ``interval`` iterations; returned on
    the epoch axis."""
    rng = np.random.default_rng(seed)
    g = np.arange(interval, epochs * IPE + 1, interval, dtype=float)
    trend = 3.0 * np.exp(-g / (epochs * IPE)) + 1.0
    wave = amplitude * np.sin(2 * np.pi * g / period_iters + 0.3)
    return g / IPE, trend * (1 + wave + noise * rng.standard_normal(len(g)))


@pytest.mark.parametrize("epochs", [12, 30])
@pytest.mark.parametrize("interval", [1, 10, 50])
@pytest.mark.parametrize("period", [30, 666, IPE])
def test_a_planted_sinusoid_reads_its_amplitude_over_sqrt2(period, interval, epochs):
    x, loss = planted(period, interval, epochs)
    stats = oscillation_stats(x, loss)
    assert stats.residual_rsd_pct == pytest.approx(5 / math.sqrt(2), rel=0.1)
    assert stats.window_epochs == 3.0
    if interval * 2 < period:  # above the Nyquist limit of the logging the period itself is recovered
        assert stats.period_epochs * IPE == pytest.approx(period, rel=0.05)
        assert stats.amplitude_pct == pytest.approx(5, rel=0.1)
        assert stats.peak_share_pct > 90


def test_the_figure_does_not_depend_on_the_logging_interval_or_the_run_length():
    readings = [oscillation_stats(*planted(666, interval, epochs, noise=0.02, seed=interval + epochs)).residual_rsd_pct
                for interval in (1, 10, 50) for epochs in (12, 30)]
    expected = math.sqrt(0.05**2 / 2 + 0.02**2) * 100
    assert max(readings) / min(readings) < 1.1
    assert all(r == pytest.approx(expected, rel=0.1) for r in readings)


@pytest.mark.parametrize("relative_sd", [0.03, 0.08, 0.15])
def test_residual_rsd_recovers_known_relative_noise(relative_sd):
    x, loss = planted(666, 10, 12, amplitude=0.0, noise=relative_sd, seed=1)
    stats = oscillation_stats(x, loss)
    assert stats.residual_rsd_pct == pytest.approx(relative_sd * 100, rel=0.06)
    assert stats.peak_share_pct < 20  # white noise: no dominant wave


def test_images_per_epoch_turns_periods_and_windows_into_images():
    x, loss = planted(IPE / 4, 10, 12)
    stats = oscillation_stats(x, loss, images_per_epoch=IPE * 16)
    assert stats.window_images == 3 * IPE * 16
    assert stats.period_images == pytest.approx(IPE * 16 / 4, rel=0.05)
    assert "period_images" in stats.as_dict()


def test_a_step_at_a_schedule_event_is_not_counted_as_oscillation():
    # the L1 loss switching on at the no-aug start lifts the total loss by a step: the trend is split there
    x, loss = planted(666, 10, 12, amplitude=0.0, noise=0.05, seed=6)
    stepped = np.where(x > 7, loss * 1.5, loss)
    plain = oscillation_stats(x, loss).residual_rsd_pct
    assert oscillation_stats(x, stepped, breaks=[7.0]).residual_rsd_pct == pytest.approx(plain, rel=0.1)
    assert oscillation_stats(x, stepped).residual_rsd_pct > 1.3 * plain  # without the break it would be


def test_a_straight_trend_is_followed_exactly():
    x = np.linspace(0, 10, 2001)
    line = 5 - 0.3 * x
    assert np.allclose(running_trend(x, line, 3.0), line)
    assert oscillation_stats(x, line).residual_rsd_pct == pytest.approx(0, abs=1e-9)


def test_comparison_span_limits_the_measured_stretch():
    x, loss = planted(666, 10, 30)
    stats = oscillation_stats(x, loss, span=(0, 12))
    assert stats.span_end == pytest.approx(12) and stats.residual_rsd_pct == pytest.approx(3.54, rel=0.1)


def test_non_finite_points_are_dropped_and_counted():
    x, loss = planted(666, 10, 12, amplitude=0.0, noise=0.05, seed=7)
    broken = loss.copy()
    broken[[10, 200, 500]] = [np.nan, np.inf, np.nan]
    stats = oscillation_stats(x, broken)
    assert stats.dropped == 3
    assert math.isfinite(stats.residual_rsd_pct) and stats.residual_rsd_pct == pytest.approx(5, rel=0.1)


def test_per_epoch_rsd_finds_the_noisy_epoch():
    rng = np.random.default_rng(8)
    x = np.arange(1, 9 * 300 + 1) / 300  # 9 epochs of 300 points
    epoch = np.ceil(x - 1e-9)
    sd = np.where(epoch == 5, 0.15, 0.03)
    stats = oscillation_by_epoch(x, 3.0 * (1 + sd * rng.standard_normal(len(x))))
    assert sorted(stats) == list(range(1, 10))
    assert stats[5] == pytest.approx(15, rel=0.15) and stats[3] == pytest.approx(3, rel=0.2)


def test_tiny_series_give_nan_not_errors():
    empty = oscillation_stats([], [])
    assert empty.points == 0 and math.isnan(empty.residual_rsd_pct) and math.isnan(empty.period_epochs)
    one = oscillation_stats([0.1], [2.0])
    assert one.points == 1 and math.isnan(one.residual_rsd_pct)


def test_comparison_line_states_the_shared_window_and_span():
    smooth = oscillation_stats(*planted(666, 10, 12, amplitude=0.025), images_per_epoch=1000)
    rough = oscillation_stats(*planted(666, 10, 12, amplitude=0.05), images_per_epoch=1000)
    line = comparison_line("smooth_v2", smooth, "base", rough)
    assert line.startswith("smooth_v2 vs base: residual RSD 1.7")
    assert -55 <= int(line.split("(")[1].split("%")[0]) <= -45
    assert "same trend window 3 epochs (3,000 images)" in line and "same span: epochs 0.01 to 12.00" in line
