"""The built-in synthetic nuScenes release: a seeded world of moving actors (``world``), a camera rig
(``camera_rig``), rendered JPEGs (``render``) and the tables in nuScenes' schema (``generate``).
"""
