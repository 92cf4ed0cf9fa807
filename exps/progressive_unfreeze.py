"""V2 settings with progressive unfreezing: head, then PAFPN, then dark5, newly unfrozen groups at lower LR."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from smooth_v2 import Exp as V2Exp

from yolox_finetune.training.exp import Phase


class Exp(V2Exp):
    def __init__(self):
        super().__init__()
        self.exp_name = "progressive_unfreeze"
        self.unfreeze_schedule = (
            Phase(1, {"head": 1.0}),
            Phase(11, {"pafpn": 0.1, "head": 1.0}),
            Phase(21, {"dark5": 0.05, "pafpn": 0.1, "head": 1.0}),
        )
