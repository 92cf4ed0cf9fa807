"""Oscillation statistics recover known noise, jump rates and slopes from synthetic loss series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from yolox_finetune.analysis.oscillation import (
    comparison_line,
    default_window,
    oscillation_by_epoch,
    oscillation_stats,
    rolling_median,
)


def noisy_loss(points: int, relative_sd: float, seed: int = 0, step: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A decaying loss trend times (1 + relative_sd * N(0, 1)), logged every ``step`` iterations."""
    rng = np.random.default_rng(seed)
    iters = np.arange(1, points + 1) * step
    trend = 4.0 * np.exp(-iters / (points * step / 2)) + 2.0
    return iters.astype(float), trend * (1 + relative_sd * rng.standard_normal(points))


@pytest.mark.parametrize("relative_sd", [0.03, 0.08, 0.15])
def test_residual_rsd_recovers_known_relative_noise(relative_sd):
    iters, loss = noisy_loss(3000, relative_sd, seed=1)
    stats = oscillation_stats(iters, loss)
    assert stats.residual_rsd_pct == pytest.approx(relative_sd * 100, rel=0.06)
    assert stats.points == 3000 and stats.dropped == 0


@pytest.mark.parametrize("relative_sd", [0.05, 0.1, 0.2])
def test_jump_share_matches_gaussian_expectation(relative_sd):
    # consecutive points differ by trend * sd * (e2 - e1): |diff| > 0.2 with probability 2 * (1 - Phi(0.2 / (sd*sqrt2)))
    iters, loss = noisy_loss(6000, relative_sd, seed=2)
    expected = 2 * (1 - norm.cdf(0.2 / (relative_sd * math.sqrt(2)))) * 100
    stats = oscillation_stats(iters, loss, jump_fraction=0.2)
    assert stats.jump_share_pct == pytest.approx(expected, abs=max(0.4, 0.12 * expected))


def test_slope_recovers_a_linear_trend_per_1000_iterations():
    rng = np.random.default_rng(3)
    iters = np.arange(1, 2001) * 5.0
    loss = 10.0 - 0.35 * iters / 1000 + rng.normal(0, 0.05, iters.size)
    assert oscillation_stats(iters, loss).slope_per_1k == pytest.approx(-0.35, abs=0.01)


def test_noisier_series_scores_higher_on_every_measure_of_oscillation():
    iters, smooth = noisy_loss(1500, 0.04, seed=4)
    _, noisy = noisy_loss(1500, 0.12, seed=5)
    calm, rough = oscillation_stats(iters, smooth), oscillation_stats(iters, noisy)
    assert rough.residual_rsd_pct > 2 * calm.residual_rsd_pct
    assert rough.jump_share_pct > calm.jump_share_pct


def test_a_step_in_the_trend_is_not_counted_as_oscillation():
    # the L1 loss switching on at the no-aug start lifts the total loss by a step: the median trend follows it
    iters, loss = noisy_loss(2000, 0.05, seed=6)
    stepped = loss.copy()
    stepped[1200:] *= 1.5  # same relative noise, a 50 % higher level
    assert oscillation_stats(iters, stepped).residual_rsd_pct == pytest.approx(
        oscillation_stats(iters, loss).residual_rsd_pct, rel=0.1)


def test_non_finite_points_are_dropped_and_counted():
    iters, loss = noisy_loss(800, 0.05, seed=7)
    broken = loss.copy()
    broken[[10, 200, 500]] = [np.nan, np.inf, np.nan]
    stats = oscillation_stats(iters, broken)
    assert stats.dropped == 3 and stats.points == 797
    assert math.isfinite(stats.residual_rsd_pct) and stats.residual_rsd_pct == pytest.approx(5, rel=0.15)


def test_per_epoch_statistics_find_the_noisy_epoch():
    rng = np.random.default_rng(8)
    per_epoch = 300
    epochs = np.repeat([1, 2, 3], per_epoch)
    iters = np.arange(1, epochs.size + 1) * 10.0
    sd = np.where(epochs == 2, 0.15, 0.03)
    loss = 3.0 * (1 + sd * rng.standard_normal(epochs.size))
    stats = oscillation_by_epoch(epochs, iters, loss)
    assert sorted(stats) == [1, 2, 3]
    assert stats[2].residual_rsd_pct == pytest.approx(15, rel=0.12)
    assert stats[1].residual_rsd_pct == pytest.approx(3, rel=0.2)
    assert stats[2].jump_share_pct > 5 * stats[3].jump_share_pct
    assert sum(s.points for s in stats.values()) == epochs.size


def test_tiny_series_give_nan_not_errors():
    empty = oscillation_stats([], [])
    assert empty.points == 0 and math.isnan(empty.residual_rsd_pct) and math.isnan(empty.slope_per_1k)
    one = oscillation_stats([10], [2.0])
    assert one.points == 1 and math.isnan(one.jump_share_pct)


def test_rolling_median_is_centred_and_shrinks_at_the_ends():
    values = np.array([1.0, 9.0, 2.0, 3.0, 100.0, 4.0, 5.0])
    smoothed = rolling_median(values, 3)
    assert smoothed.tolist() == [5.0, 2.0, 3.0, 3.0, 4.0, 5.0, 4.5]
    assert default_window(10) == 3 and default_window(200) == 11 and default_window(10_000) == 51
    assert default_window(600) % 2 == 1


def test_comparison_line_reports_relative_change_against_the_reference():
    iters, smooth = noisy_loss(1500, 0.04, seed=9)
    _, noisy = noisy_loss(1500, 0.08, seed=10)
    line = comparison_line("smooth_v2", oscillation_stats(iters, smooth), "base", oscillation_stats(iters, noisy))
    assert line.startswith("smooth_v2 vs base: residual RSD 4.")
    change = int(line.split("(")[1].split("%")[0])
    assert -60 <= change <= -40
    assert "jumps >20%" in line and "per 1k iters" in line
