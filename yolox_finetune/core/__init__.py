"""The torch-free core every other part builds on.

Class names and ids, the user-facing error type and its one-line CLI wrapper, atomic file writes, output-folder
ownership, and the model's module groups and unfreezing phases as plain data. Nothing here imports torch,
YOLOX or a plotting library, so reading logs, converting data and evaluating trackers stay light.
"""
