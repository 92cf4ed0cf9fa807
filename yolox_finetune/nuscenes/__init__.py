"""nuScenes: table access, 3D->2D projection, scene splits, and export to COCO (training) and MOT sequences
(tracking evaluation). ``synthetic/`` generates a small dataset in the real nuScenes table schema, so every path
here runs without downloading nuScenes.
"""
