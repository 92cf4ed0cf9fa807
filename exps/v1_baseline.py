"""V1: the 30-epoch head-only run as first done, with the backbone's BN statistics really frozen (see v1_as_run).

EMA half-life 1 epoch: the 2 no-aug epochs hold ~77% of the final EMA (YOLOX's 0.9998: ~30%; at 666 iters/epoch).
"""

from yolox_finetune.training.exp import NuScenesExp


class Exp(NuScenesExp):
    def __init__(self):
        super().__init__()
        self.max_epoch = 30
        self.batch_size = 32
        self.warmup_epochs = 1
        self.no_aug_epochs = 2
        self.basic_lr_per_img = 0.001 / 64.0
        self.min_lr_ratio = 0.01
        self.mosaic_prob = 0.5
        self.mixup_prob = 0.5
        self.hsv_prob = 0.5
        self.flip_prob = 0.5
        self.ema_half_life_epochs = 1.0
