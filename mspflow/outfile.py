"""Writing an output a user named (``-o PATH``) without destroying what is there.

What the path is decides how it is written:

- ``-``: standard output;
- a regular file, or nothing yet: a temporary file beside it, renamed over it
  once complete, so a failed export leaves the old file as it was (the mode of
  a file replaced is kept);
- a device, a FIFO or a socket (``/dev/null``, ``/dev/stdout``, a pipe): opened
  and written in place, never replaced by a regular file;
- a symbolic link: followed, and the file it points at written as above;
- a folder, a missing folder, a path that cannot be written: refused with
  :class:`~mspflow.errors.InvalidInput` naming the path, nothing written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

from mspflow.errors import InvalidInput, StorageError

__all__ = ["write_output"]

T = TypeVar("T")


def _refuse(path: str, why: str, hint: str | None = None) -> InvalidInput:
    from mspflow.inputs import shown

    return InvalidInput(f"cannot write {shown(path, 200)}: {why}", hint=hint, field="output")


def _os_error(path: str, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        from mspflow.inputs import shown

        return StorageError(
            f"cannot write {shown(path, 200)}: the disk is full; nothing was written",
            hint="free some space and run the command again",
        )
    return _refuse(path, exc.strerror or str(exc))


def write_output(target: str, write: Callable[[TextIO], T]) -> T:
    """Call ``write`` with a text stream for ``target`` and return what it returns."""
    if target == "-":
        return write(sys.stdout)
    if "\x00" in target:
        raise _refuse(target, "the path contains a NUL character")
    real = os.path.realpath(os.path.expanduser(target))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _os_error(target, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise _refuse(target, "it is a folder", "name a file inside it")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:
            with open(real, "w", encoding="utf-8", newline="") as out:
                return write(out)
        except OSError as exc:
            raise _os_error(target, exc) from None
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise _refuse(target, f"there is no folder {folder}", "create it first")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{Path(real).name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise _os_error(target, exc) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _os_error(target, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return result


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
