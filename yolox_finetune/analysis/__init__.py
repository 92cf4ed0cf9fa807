"""Reading training runs and answering "does it oscillate, does it converge, which epoch": run loading
(metrics.jsonl, plan.json, sweep.csv per split), the common axis (images seen / epochs), oscillation statistics,
convergence verdicts, plots and the Markdown/HTML report.
"""
