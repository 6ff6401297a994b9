"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target.

With ``replace=False`` the last step never replaces anything: the temporary file is hard-linked to the
target name (which fails if a file appeared there meanwhile) and then unlinked; where the file system has
no hard links, the name is reserved with an exclusive create instead. So of two writers to one new name
exactly one succeeds, and a file that appeared while the data was being prepared is kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from engine import temp_files

_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
APPEARED = "the file appeared while this one was being written; that file was kept and nothing was written"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on error it is removed.

    ``replace=False``: the target must not exist when the write ends; if it does, ``FileExistsError``
    (whose message says the existing file was kept) and the temporary file is removed.

    The temporary name (``engine.temp_files``) keeps the target's suffix so that writers which pick a format
    from the extension (Pillow, OpenCV) still do the right thing, and stays short for long target names; the
    first write into a folder removes the stale temporaries killed writes of this program left there. A
    symbolic link is followed: the file it points to is replaced and the link stays. A file without write
    permission is not replaced (``PermissionError``): renaming over it would succeed, and silently undo the
    read-only mark its owner set.
    """
    target = Path(target)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if target.exists() and not stat.S_ISREG(target.stat().st_mode) and not target.is_dir():
        raise OSError(errno.EINVAL, "not a regular file (a device, FIFO or socket); refusing to replace it",
                      str(target))
    if not replace and os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "the file already exists; it was kept", str(target))
    if target.is_file() and not target.stat().st_mode & 0o200:
        raise PermissionError(errno.EACCES, "the file is read-only", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    temp_files.remove_stale(target.parent)  # what a killed write of this program left here
    prefix, suffix = temp_files.name_parts(target)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        if replace:
            os.replace(tmp, target)
        else:
            _place_new(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _place_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if no file has it: link then unlink, or exclusive create."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, APPEARED, str(target)) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:  # no hard links here (FAT, some network shares): reserve the name, then rename over our own file
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, APPEARED, str(target)) from None
        os.close(fd)
        os.replace(tmp, target)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual ``0666 & ~umask``."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes, replace: bool = True) -> None:
    """Write ``data`` to ``target`` atomically (``replace=False``: only if no file has that name)."""
    with atomic_path(target, replace=replace) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def write_with_atomic(target: str | os.PathLike[str], writer: Callable[[Path], None], replace: bool = True) -> None:
    """Call ``writer(tmp_path)`` and move the result over ``target`` only if it succeeded (``replace=False``:
    and only if no file has that name by then)."""
    with atomic_path(target, replace=replace) as tmp:
        writer(tmp)
