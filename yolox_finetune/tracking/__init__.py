"""Judging a detector by tracking: detector inference with its on-disk cache, the track-and-evaluate flows behind
``tools/track_eval.py``, confidence sweeps behind ``tools/conf_sweep.py`` and the tracker options shared by both.

Sits above ``training`` (it loads exps and checkpoints) and ``mot`` (it runs trackers and counts metrics).
"""
