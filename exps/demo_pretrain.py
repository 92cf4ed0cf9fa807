"""Stands in for COCO weights, which cannot be downloaded here: the demo model trained from scratch, every group,
with an 80-class head, so that fine-tuning loads it exactly like a COCO YOLOX checkpoint (class head skipped).

Short (3 epochs: it barely detects anything yet) and at a lower resolution than fine-tuning (192x352: 120 s
instead of 173 s on 2 cores, which gives ``make demo`` its time margin): the demo's minutes go to fine-tuning, where
the detector learns what tracking needs (``make demo``, test MOTA all frames at default thresholds: this recipe
val mAP@0.5 59% and MOTA 26.0 in 854 s; 3 epochs at 256x448 + 10: 67% and 31.4 in 899 s; 2 at 256x448 + 10:
66% and 21.2 in 825 s; 4 + 10: 72% and 33; 8 + 5 with the backbone kept frozen: 43% and 18; issue 14).
AdamW, not YOLOX's SGD: from scratch in a few hundred iterations SGD was a lottery (12 epochs reached val
mAP@0.5 31% with one seed and never left "no boxes" with others; twice its LR diverged). Validated once, at the
end: nobody picks an epoch of a stand-in for downloaded weights.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from demo import Exp as DemoExp

from yolox_finetune.training.exp import GROUPS, Phase


class Exp(DemoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = "demo_pretrain"
        self.num_classes = 80
        self.input_size = (192, 352)  # fine-tuning's 256x448 costs 50 s more here; see the docstring
        self.test_size = (192, 352)
        self.max_epoch = 3
        self.eval_interval = self.max_epoch
        self.no_aug_epochs = 1
        self.basic_lr_per_img = 1e-3 / 8  # AdamW: peak LR 1e-3 at the demo's batch of 8
        self.min_lr_ratio = 0.2
        self.mosaic_prob = 0.3
        self.mixup_prob = 0.0
        self.ckpt_epochs = ()
        self.unfreeze_schedule = (Phase(1, dict.fromkeys(GROUPS, 1.0)),)
