"""Stands in for COCO weights, which cannot be downloaded here: the demo model trained from scratch, every group,
with an 80-class head, so that fine-tuning loads it exactly like a COCO YOLOX checkpoint (class head skipped).

Validated once, at the end: nobody picks an epoch of a stand-in for downloaded weights. Shorter or smaller
pre-training was tried (issue 14's time budget) and learned too little: 10 epochs at 192x320 gave val mAP@0.5 11%
on the CPU and a test MOTA under 5 after fine-tuning; 6-8 epochs at 256x448 sometimes never left "no boxes".
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
        self.max_epoch = 12
        self.eval_interval = self.max_epoch
        self.no_aug_epochs = 1
        self.basic_lr_per_img = 0.02 / 64.0  # from scratch on few images: learn fast, decay little
        self.min_lr_ratio = 0.2
        self.mosaic_prob = 0.3
        self.mixup_prob = 0.0
        self.ckpt_epochs = ()
        self.unfreeze_schedule = (Phase(1, dict.fromkeys(GROUPS, 1.0)),)
