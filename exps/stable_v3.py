"""V3: gentler still: longer warmup and no-aug tail, lower LR, milder geometric augmentation; head-only.

EMA half-life 3 epochs: the 8 no-aug epochs hold ~95% of the final EMA (YOLOX's 0.9998: ~90%; at 666 iters/epoch).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from v1_baseline import Exp as V1Exp


class Exp(V1Exp):
    def __init__(self):
        super().__init__()
        self.exp_name = "stable_v3"
        self.warmup_epochs = 3
        self.no_aug_epochs = 8
        self.basic_lr_per_img = 0.0006 / 64.0
        self.min_lr_ratio = 0.10
        self.mosaic_prob = 0.2
        self.mixup_prob = 0.15
        self.hsv_prob = 0.4
        self.degrees = 3.0
        self.translate = 0.08
        self.mosaic_scale = (0.85, 1.15)
        self.mixup_scale = (0.85, 1.15)
        self.shear = 0.5
        self.ema_half_life_epochs = 3.0
