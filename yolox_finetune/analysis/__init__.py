"""Reading training runs and answering "does it oscillate, does it converge, which epoch": run loading
(metrics.jsonl, plan.json, sweep.csv), plots, oscillation statistics and the Markdown/HTML report.
"""
