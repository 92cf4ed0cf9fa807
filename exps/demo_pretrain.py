"""Stands in for COCO weights, which cannot be downloaded here: the demo model trained from scratch, every group,
with an 80-class head, so that fine-tuning loads it exactly like a COCO YOLOX checkpoint (class head skipped).

Trained at 192x320 (half the pixels of the fine-tuning size: the features transfer, as COCO's 640 px ones do) and
validated once, at the end: nobody picks an epoch of a stand-in for downloaded weights. Measured on GPU over seeds,
10 epochs at this size learned every time, where 6-8 epochs (or 12 at 160x288) sometimes never left "no boxes".
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
        self.max_epoch = 10
        self.input_size = (192, 320)
        self.test_size = (192, 320)
        self.eval_interval = self.max_epoch
        self.no_aug_epochs = 1
        self.basic_lr_per_img = 0.02 / 64.0  # from scratch on few images: learn fast, decay little
        self.min_lr_ratio = 0.2
        self.mosaic_prob = 0.3
        self.mixup_prob = 0.0
        self.ckpt_epochs = ()
        self.unfreeze_schedule = (Phase(1, dict.fromkeys(GROUPS, 1.0)),)
