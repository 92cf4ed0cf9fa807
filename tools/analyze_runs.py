"""Analyse training runs (curves, oscillation, convergence, run comparison, sweep winners, report) or draw an exp's
LR plan before training.

    python tools/analyze_runs.py RUN_DIR [RUN_DIR ...] [--out DIR] [--window-epochs W] [--last-epochs N]
    python tools/analyze_runs.py --plan -f exps/x.py [--iters-per-epoch N] [--out PNG]

Runs are compared on a common axis, images seen (epochs in the plots): the oscillation's trend window is W epochs
of the first run in images, the same for every run, over the epochs all runs reached. Default --out:
<RUN_DIR>/analysis/ for one run, ./analysis/ when comparing several (the first run is the reference of the
comparison lines); for --plan, ./analysis/plan_<exp_name>.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.core.formatting import format_number as _fmt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", type=Path, help="training run dirs (<output_dir>/<exp_name>)")
    parser.add_argument("--out", type=Path, default=None, help="output dir (for --plan: output PNG)")
    parser.add_argument("--window-epochs", type=float, default=3.0,
                        help="oscillation trend window in epochs of the first run, the same number of images for "
                             "every run (default %(default)s; cut to a third of the compared span for short runs)")
    parser.add_argument("--last-epochs", type=int, default=3,
                        help="the convergence verdict compares the last epoch with this many epochs before it "
                             "(default %(default)s)")
    parser.add_argument("--best-by", default=None,
                        help="sweep metric that picks the best conf per checkpoint (default: MOTA, else HOTA, IDF1); "
                             "lower-is-better metrics (IDSW, FP, FN, ...) pick the minimum")
    parser.add_argument("--media", nargs="+", default=[], type=Path,
                        help="pictures (.png, embedded) and videos (linked) of tracks to show in the report, e.g. "
                             "from tools/visualize.py")
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

    result = analyze_runs(args.run_dirs, args.out, window_epochs=args.window_epochs, best_by=args.best_by,
                          last_epochs=args.last_epochs, media=args.media)
    for name, head in result["runs"].items():
        osc = head["oscillation"]
        verdicts = "; ".join(f"{c['series']}: {c['verdict']}" for c in head["convergence"])
        print(f"{name}: best AP50-95 {_fmt(head['best_ap50_95'])} (epoch {head['best_epoch']}), "
              f"AP50 {_fmt(head['best_ap50'])}; residual RSD {_fmt(osc['residual_rsd_pct'], '.2f')}% "
              f"(window {_fmt(osc['window_epochs'], '.3g')} epochs); {verdicts}")
        chosen = head.get("best_checkpoint")
        if chosen:
            print(f"  best_ckpt.pth: epoch {chosen['epoch']}, chosen by {chosen['metric']} ({_fmt(chosen['value'])})")
        for tracker in dict.fromkeys(b["tracker"] for b in head.get("tracking_bests") or []):
            bests = [b for b in head["tracking_bests"] if b["tracker"] == tracker]
            print(f"  {tracker} (tracking validation): " + ", ".join(
                f"{b['metric']} best {_fmt(b['value'])} at epoch {b['epoch']}" for b in bests))
    for line in result["comparison"]:
        print(line)
    print(f"report: {result['report_md']}\n        {result['report_html']}")


if __name__ == "__main__":
    main()
