"""Convergence verdicts: a plateau is flat within noise, a falling loss is still falling, the interval is honest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from yolox_finetune.analysis.convergence import epoch_series_convergence, training_loss_convergence, verdict
from yolox_finetune.analysis.oscillation import relative_residual


def loss_run(epochs: int, plateau_epoch: int | None, noise: float = 0.05, seed: int = 0, per_epoch: int = 200):
    """A decaying loss (held flat from ``plateau_epoch``) with relative noise, on the epoch axis."""
    rng = np.random.default_rng(seed)
    x = np.arange(1, epochs * per_epoch + 1) / per_epoch
    flat_x = np.minimum(x, plateau_epoch - 1) if plateau_epoch else x
    loss = (3.0 * np.exp(-flat_x / epochs) + 1.0) * (1 + noise * rng.standard_normal(len(x)))
    x, values, trend, _ = relative_residual(x, loss)
    return x, values, trend


def test_a_loss_that_plateaued_at_epoch_10_is_flat_not_improving():
    # a 95 % interval: about 1 run in 20 reads rising or falling by chance, never "still falling" systematically
    results = [training_loss_convergence(*loss_run(30, 10, seed=seed)) for seed in range(20)]
    assert sum(r.verdict == "flat within noise" for r in results) >= 17
    assert sum(r.verdict == "still falling" for r in results) <= 2
    assert all((r.from_epoch, r.to_epoch) == (27, 30) for r in results)


def test_a_loss_that_still_falls_is_called_falling_with_an_interval_below_zero():
    result = training_loss_convergence(*loss_run(30, None, seed=1))
    assert result.verdict == "still falling"
    expected = 3.0 * (math.exp(-29.5 / 30) - math.exp(-26.5 / 30))  # epoch means of the trend
    assert result.ci_low < expected < result.ci_high < 0


def test_the_interval_widens_with_the_noise():
    calm = training_loss_convergence(*loss_run(30, 10, noise=0.02, seed=2))
    rough = training_loss_convergence(*loss_run(30, 10, noise=0.2, seed=2))
    assert (rough.ci_high - rough.ci_low) > 5 * (calm.ci_high - calm.ci_low)


def test_per_epoch_series_use_their_direction():
    epochs = list(range(1, 11))
    ap = [0.05 * e for e in epochs]
    assert epoch_series_convergence(epochs, ap, "AP", higher_is_better=True).verdict == "still rising"
    falling_ap = [1 - 0.05 * e for e in epochs]
    assert epoch_series_convergence(epochs, falling_ap, "AP", higher_is_better=True).verdict == "falling"
    flat_verdicts = [epoch_series_convergence(epochs, list(0.5 + 0.01 * np.random.default_rng(s).standard_normal(10)),
                                              "val loss").verdict for s in range(40)]
    assert flat_verdicts.count("flat within noise") >= 32  # 95 % nominal; the noise itself is estimated
    assert epoch_series_convergence([1], [0.3], "AP").verdict == "too few epochs"


def test_verdict_rules():
    assert verdict(-1.0, 0.1) == "still falling" and verdict(1.0, 0.1) == "rising"
    assert verdict(0.1, 0.1) == "flat within noise" and verdict(1.0, 0.1, higher_is_better=True) == "still rising"
    assert verdict(math.nan, 0.1) == "too few epochs"


@pytest.mark.parametrize("last", [1, 5])
def test_the_number_of_epochs_is_the_one_asked_for(last):
    result = training_loss_convergence(*loss_run(12, None), last_epochs=last)
    assert result.to_epoch - result.from_epoch == last
