"""User-facing errors: one clear line (what, where, how to fix) and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

T = TypeVar("T")

#: exit status of a command that stopped on bad input.
EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input from the user: the message is the whole story and is printed as one line."""

    user_facing = True


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Decorate a tool's ``main``: a UserError becomes ``error: <message>`` on stderr and exit status 2.

    Standalone packages that must not import this project (``trackers``) take part by a contract instead of an
    import: an exception whose class sets ``user_facing = True`` (``trackers.errors.TrackerError``) is bad user
    input with a one-line message, and is reported exactly like a UserError. Any other exception keeps its
    traceback: it is a bug to fix, not input to correct. A full disk met by a write that has no handling of its
    own (an ``OSError`` with ENOSPC/EDQUOT) is one line too, naming the file.
    """

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BrokenPipeError:  # e.g. `tools/train.py --plan | head`: the reader left, nothing went wrong
            sys.stderr.close()
            raise SystemExit(0) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            print(f"error: no space left on the disk{where}; free some space or write elsewhere", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except Exception as exc:
            if getattr(type(exc), "user_facing", False) is not True:
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper
