"""Train a YOLOX exp: ``python tools/train.py -f exps/smooth_v2.py [-b 16] [--device cpu] [KEY VALUE ...]``.

``--plan`` prints what the schedule will do, epoch by epoch, without touching data. ``-d N`` (N > 1) relaunches
itself under torchrun with N processes; under torchrun it joins the process group (gloo on CPU, nccl on CUDA).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from yolox_finetune.core.errors import UserError, cli_entry


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--exp-file", required=True, help="exp file, e.g. exps/smooth_v2.py")
    parser.add_argument("-b", "--batch-size", type=int, default=None, help="global batch size (default: the exp's)")
    parser.add_argument("-d", "--devices", type=int, default=1, help="processes/GPUs on this machine (DDP when > 1)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("-c", "--ckpt", default=None, help="pretrained weights (new run) or the state to resume")
    parser.add_argument("--resume", action="store_true", help="continue from latest_ckpt.pth in the run dir")
    parser.add_argument("--overwrite", action="store_true", help="start afresh in a run dir that has checkpoints")
    parser.add_argument("--fp16", action="store_true",
                        help="mixed-precision training (CUDA only); validation stays fp32 unless --val-fp16")
    parser.add_argument("--val-fp16", action="store_true",
                        help="COCO validation under fp16 autocast (CUDA only; default fp32 as stock YOLOX's "
                             "COCOEvaluator; recorded as val_precision in metrics.jsonl)")
    parser.add_argument("--cache", action="store_true", help="cache resized training images in RAM/disk (YOLOX)")
    parser.add_argument("--plan", action="store_true", help="print the training plan and exit")
    parser.add_argument("--json", action="store_true", help="with --plan: one JSON object on stdout")
    parser.add_argument("--iters-per-epoch", type=int, default=None, help="with --plan: iterations per epoch")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE pairs overriding exp attributes")
    return parser


def relaunch_under_torchrun(devices: int) -> int:
    """``-d N`` without torchrun: start N local processes through torch.distributed.run."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
           *sys.argv]
    return subprocess.call(cmd)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.devices < 1:
        raise UserError(f"-d {args.devices}: need at least one device")
    under_torchrun = "LOCAL_RANK" in os.environ

    from yolox_finetune.training.exp import apply_overrides, load_exp
    from yolox_finetune.training.inputs import check_batch_size, check_device_count, check_training_inputs

    # everything the user gave is checked here, once, before torchrun starts processes that would each report it
    exp = load_exp(args.exp_file)
    apply_overrides(exp, args.opts)
    check_batch_size(args.batch_size, args.devices, exp.batch_size)
    if args.plan:
        from yolox_finetune.training.schedule import build_plan, print_plan

        if args.iters_per_epoch is not None and args.iters_per_epoch < 1:
            raise UserError("--iters-per-epoch must be at least 1")
        plan = build_plan(exp, args.iters_per_epoch, args.batch_size, world_size=args.devices)
        print_plan(plan, args.json)
        return 0
    if args.json or args.iters_per_epoch is not None:
        raise UserError("--json and --iters-per-epoch only apply with --plan")
    if args.devices > 1 and not under_torchrun:
        check_device_count(args.device, args.devices)
        check_training_inputs(exp, batch_size=args.batch_size, world_size=args.devices, ckpt=args.ckpt,
                              resume=args.resume)
        return relaunch_under_torchrun(args.devices)

    from yolox_finetune.training.trainer import TrainOptions, train

    options = TrainOptions(batch_size=args.batch_size, device=args.device, ckpt=args.ckpt, resume=args.resume,
                           fp16=args.fp16, val_fp16=args.val_fp16, cache_img=args.cache, overwrite=args.overwrite)
    train(exp, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
