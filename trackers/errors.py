"""The one error type of the trackers package: bad input from whoever drives a tracker (a name, an option, a file).

It subclasses ValueError, so plain Python callers can catch it as one. Command-line front ends that print errors as
one line (``yolox_finetune.core.errors.cli_entry``) recognise it by ``user_facing = True`` without importing it.
"""

from __future__ import annotations


class TrackerError(ValueError):
    """Bad tracker input; the message is one line saying what is wrong, where, and how to fix it."""

    #: marker for command-line wrappers: print ``error: <message>`` and exit 2, no traceback.
    user_facing = True
