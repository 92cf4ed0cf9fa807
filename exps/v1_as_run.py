"""V1 exactly as the user ran it, so V1-as-run vs V1 (v1_baseline) vs V2 can be compared one change at a time.

Their script froze the backbone with ``requires_grad=False`` only: the frozen layers' BatchNorm stayed in train
mode, normalised with batch statistics and rewrote its running statistics every batch. It also kept YOLOX's EMA
decay 0.9998 (the 2 no-aug epochs ~30% of the saved weights). v1_baseline differs in both; for one change at a
time, run v1_baseline with ``ema_half_life_epochs None`` (BN fixed, stock EMA) between the two.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from v1_baseline import Exp as V1Exp


class Exp(V1Exp):
    def __init__(self):
        super().__init__()
        self.exp_name = "v1_as_run"
        self.bn_policy = "requires_grad_only"
        self.ema_half_life_epochs = None
