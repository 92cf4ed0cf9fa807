"""Fine-tuning YOLOX: the nuScenes Exp, data order, LR schedule per module group, progressive unfreezing with the
BatchNorm policy, checkpoints, COCO validation and the trainer loop (CPU, CUDA, DDP).

Exps in ``exps/`` import :class:`yolox_finetune.training.exp.NuScenesExp` and :class:`Phase` from here.
"""
