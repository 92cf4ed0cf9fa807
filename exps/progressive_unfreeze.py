"""V2 settings with progressive unfreezing: head, then PAFPN, then dark5, each stage with its own LR.

Choices (seed 004's lessons):
- each phase runs its own warmup + cosine (``lr_per_img``, ``warmup_epochs``) instead of scaling the tail of one
  30-epoch cosine, so dark5 trains at up to 5e-5 in epochs 21-30 rather than 3e-6 -> 1e-6;
- the last stage uses differential LRs: dark5 x0.25 < PAFPN x0.5 < head x1 of the stage's base;
- ``bn_policy = "backbone"``: the pretrained CSPDarknet/PAFPN BatchNorm statistics stay frozen even where their
  weights train (small per-GPU batches would otherwise rewrite them within a few hundred iterations);
- EMA half-life 2 epochs (V2's): the 5 no-aug epochs hold ~88% of the final EMA (at 666 iters/epoch), phase 3
  ~99.7%: the saved model is the last stage's.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from smooth_v2 import Exp as V2Exp

from yolox_finetune.training.exp import Phase


class Exp(V2Exp):
    def __init__(self):
        super().__init__()
        self.exp_name = "progressive_unfreeze"
        self.bn_policy = "backbone"
        self.unfreeze_schedule = (
            Phase(1, {"head": 1.0}, lr_per_img=0.0008 / 64.0, warmup_epochs=2),
            Phase(11, {"pafpn": 1.0, "head": 1.0}, lr_per_img=0.0004 / 64.0, warmup_epochs=1),
            Phase(21, {"dark5": 0.25, "pafpn": 0.5, "head": 1.0}, lr_per_img=0.0004 / 64.0, warmup_epochs=1),
        )
