"""Analyse training runs (curves, oscillation, run comparison, report) or draw an exp's LR plan before training.

    python tools/analyze_runs.py RUN_DIR [RUN_DIR ...] [--out DIR]
    python tools/analyze_runs.py --plan -f exps/x.py [--iters-per-epoch N] [--out PNG]

Default --out: <RUN_DIR>/analysis/ for one run, ./analysis/ when comparing several (the first run is the
reference of the comparison lines); for --plan, ./analysis/plan_<exp_name>.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yolox_finetune.analysis.oscillation import DEFAULT_JUMP_FRACTION
from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.core.formatting import format_number as _fmt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", type=Path, help="training run dirs (<output_dir>/<exp_name>)")
    parser.add_argument("--out", type=Path, default=None, help="output dir (for --plan: output PNG)")
    parser.add_argument("--window", type=int, default=None,
                        help="trend window in logged points (default: ~1/20 of the run, 11..51)")
    parser.add_argument("--jump-fraction", type=float, default=DEFAULT_JUMP_FRACTION,
                        help="a logged step is a jump when the loss moves by more than this fraction of the previous "
                             "logged value (default %(default)s)")
    parser.add_argument("--best-by", default=None,
                        help="sweep metric that picks the best conf per checkpoint (default: MOTA, else HOTA, IDF1)")
    parser.add_argument("--plan", action="store_true", help="draw the LR schedule and phases of -f EXP instead")
    parser.add_argument("-f", "--exp-file", default=None, help="exp file for --plan")
    parser.add_argument("--iters-per-epoch", type=int, default=None,
                        help="iterations per epoch for --plan (default: what build_plan derives from the exp)")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.plan:
        if not args.exp_file:
            raise UserError("--plan needs the exp: tools/analyze_runs.py --plan -f exps/<name>.py")
        if args.run_dirs:
            raise UserError("--plan draws an exp, not runs: drop the run dirs or drop --plan")
        from yolox_finetune.analysis.analyze import plan_from_exp_file
        from yolox_finetune.analysis.plots import plot_plan

        plan, exp = plan_from_exp_file(args.exp_file, args.iters_per_epoch)
        out = args.out or Path("analysis") / f"plan_{exp.exp_name}.png"
        print(f"plan plot: {plot_plan(plan, exp, out)}")
        return
    if not args.run_dirs:
        raise UserError("no run dir given: tools/analyze_runs.py RUN_DIR [RUN_DIR ...] (or --plan -f EXP)")
    from yolox_finetune.analysis.analyze import analyze_runs  # matplotlib, motmetrics: only once there is work

    result = analyze_runs(args.run_dirs, args.out, window=args.window, jump_fraction=args.jump_fraction,
                          best_by=args.best_by)
    for name, head in result["runs"].items():
        osc = head["oscillation"]
        print(f"{name}: best AP50-95 {_fmt(head['best_ap50_95'])} (epoch {head['best_epoch']}), "
              f"AP50 {_fmt(head['best_ap50'])}; residual RSD {_fmt(osc['residual_rsd_pct'], '.2f')}%, "
              f"jumps {_fmt(osc['jump_share_pct'], '.2f')}%, slope {_fmt(osc['slope_per_1k'], '+.4g')} per 1k iters")
    for line in result["comparison"]:
        print(line)
    print(f"report: {result['report_md']}\n        {result['report_html']}")


if __name__ == "__main__":
    main()
