"""MOTChallenge-style sequences: file formats, metrics and running trackers over detections.

``formats`` is the one reader and writer of gt.txt, det files, tracker results and seqinfo.ini. ``clear`` replays
motmetrics' CLEAR MOT and identity matching on numpy arrays, ``hota`` computes TrackEval's HOTA, ``evaluate`` sums
them over (sequence, class) units. ``runner`` feeds detections through a tracker from the standalone ``trackers``
package. No torch and no model: everything here works on text files of boxes.
"""
