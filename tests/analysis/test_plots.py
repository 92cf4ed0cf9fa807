"""Plot helpers: gaps break lines, colours are never reused."""

from __future__ import annotations

import numpy as np

from yolox_finetune.analysis.plots import run_colours, with_breaks


def test_missing_iterations_are_a_break_not_a_bridge():
    x = np.array([1, 2, 3, 4, 10, 11, 12], dtype=float)
    y = np.arange(7, dtype=float)
    bx, by = with_breaks(x, y)
    assert len(bx) == 8 and np.isnan(bx[4]) and np.isnan(by[4])
    assert with_breaks(np.arange(5.0), np.arange(5.0))[0].tolist() == list(range(5))


def test_many_runs_never_share_a_colour():
    for count in (2, 10, 15, 30):
        colours = [tuple(np.round(c, 4)) for c in run_colours(count)]
        assert len(set(colours)) == count
