"""Small I/O helpers shared by the core: bounded reads that refuse special files, atomic writes that
follow the umask (safe YAML loading on top of these lives in :mod:`workbench._yaml`).

Every file the workbench reads comes through :func:`read_bytes_bounded` (or :func:`open_bounded` for
images, which the image library reads piece by piece): a device, FIFO, socket or folder is refused by
its kind before it is opened, so nothing hangs on a pipe or reads ``/dev/zero`` forever, and at most
``limit + 1`` bytes are ever read, whatever the file's size claims.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> read_bytes_bounded(folder, 100, what="an ontology file")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.errors.WorkbenchError: ...: is a folder (a directory), not an ontology file
"""
from __future__ import annotations

import errno
import functools
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from workbench.errors import (
    ImageLoadError,
    WorkbenchError,
)

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "default_file_mode",
    "default_dir_mode",
    "read_bytes_bounded",
    "open_bounded",
    "human_bytes",
]

_MB = 1024 * 1024


# ------------------------------------------------------------------------------------ bounded reads
def human_bytes(n: int) -> str:
    """``2 MB``, ``512 KB``, ``1.5 MB``, ``300 bytes``."""
    if n >= _MB:
        v = n / _MB
        return f"{v:.0f} MB" if v == int(v) or v >= 100 else f"{v:.1f} MB"
    if n >= 1024:
        v = n / 1024
        return f"{v:.0f} KB" if v == int(v) or v >= 100 else f"{v:.1f} KB"
    return f"{n} byte{'s' if n != 1 else ''}"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder (a directory)"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _fail(error: type[WorkbenchError], path: str | os.PathLike[str], reason: str) -> NoReturn:
    """Raise ``error`` naming ``path``; :class:`ImageLoadError` takes the path and the reason apart."""
    if issubclass(error, ImageLoadError):
        raise error(path, reason)
    raise error(f"{path}: {reason}")


def _os_reason(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "file not found"
    if isinstance(e, NotADirectoryError):
        return "file not found (a folder on its path is a file)"
    if isinstance(e, PermissionError):
        return "permission denied: the workbench may not read it"
    return f"cannot read it ({e.strerror or e})"


def _refuse_kind(path: Path, st: os.stat_result, error: type[WorkbenchError], what: str) -> NoReturn:
    kind = _kind(st.st_mode) or "not a regular file"
    try:
        if path.is_symlink():
            target = os.readlink(path)
            _fail(error, path, f"is a symbolic link to {kind} ({target}), not {what}")
    except OSError:
        pass
    _fail(error, path, f"is {kind}, not {what}")


def _open_checked(
    path: Path, error: type[WorkbenchError], what: str, follow_symlinks: bool
) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading if, and only if, it is a regular file; return ``(fd, fstat)``.

    The kind is checked with ``stat`` before opening, so a FIFO is never opened (opening one blocks
    until a writer comes). The file is then opened non-blocking and checked again on the descriptor,
    so a file swapped for a FIFO or a device in between is refused too, without waiting.
    """
    try:
        st = os.stat(path) if follow_symlinks else os.lstat(path)
    except FileNotFoundError:
        try:
            target = os.readlink(path)
        except OSError:
            _fail(error, path, "file not found")
        _fail(error, path, f"is a symbolic link to {target}, which does not exist")
    except OSError as e:
        if e.errno == errno.ELOOP:
            _fail(error, path, "is a symbolic link that points back to itself (a loop)")
        _fail(error, path, _os_reason(e))
    if not follow_symlinks and stat.S_ISLNK(st.st_mode):
        _fail(error, path, f"is a symbolic link; {what} is not read through a link here")
    if not stat.S_ISREG(st.st_mode):
        _refuse_kind(path, st, error, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        _fail(error, path, _os_reason(e))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            _refuse_kind(path, st, error, what)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _too_large(path: Path, limit: int, error: type[WorkbenchError], what: str, size: int | None) -> NoReturn:
    shown = f" ({human_bytes(size)})" if size is not None else " (more arrived while reading it)"
    _fail(error, path, f"is larger than the {human_bytes(limit)} limit for {what}{shown}")


def read_bytes_bounded(
    path: str | os.PathLike[str],
    limit: int,
    error: type[WorkbenchError] = WorkbenchError,
    what: str = "a file",
    *,
    follow_symlinks: bool = True,
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, or ``error`` naming the file.

    Refused, each with a message naming the file and the problem: a folder, a FIFO, a socket, a
    character or block device (also through a symbolic link; with ``follow_symlinks=False`` any link),
    a missing or unreadable file, and a file over ``limit`` bytes. The size on record is checked first;
    then at most ``limit + 1`` bytes are read, so a file whose size is wrong (or that grows while it is
    read) cannot make the read go on. ``what`` names the kind of file expected, with its article:
    ``"an ontology file"``.
    """
    path = Path(path)
    fd, st = _open_checked(path, error, what, follow_symlinks)
    try:
        if st.st_size > limit:
            _too_large(path, limit, error, what, st.st_size)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            except BlockingIOError:  # a regular file never blocks; a pseudo-file might
                _fail(error, path, f"cannot be read without waiting; not {what}")
            except OSError as e:
                _fail(error, path, _os_reason(e))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            _too_large(path, limit, error, what, None)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _CappedReader(io.RawIOBase):
    """A read-only view of a file descriptor that refuses to read past ``limit`` bytes.

    It has no ``fileno``, on purpose: a library that finds one reads the descriptor directly, past the cap.
    """

    def __init__(self, fd: int, limit: int, on_overflow: Any):
        super().__init__()
        self._fd = fd
        self._limit = limit
        self._on_overflow = on_overflow

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        pos = os.lseek(self._fd, 0, os.SEEK_CUR)
        want = len(b)
        if pos >= self._limit + 1:
            self._on_overflow()
        data = os.read(self._fd, min(want, self._limit + 1 - pos))
        n = len(data)
        b[:n] = data
        if pos + n > self._limit:
            self._on_overflow()
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def open_bounded(
    path: str | os.PathLike[str],
    limit: int,
    error: type[WorkbenchError] = WorkbenchError,
    what: str = "a file",
    *,
    follow_symlinks: bool = True,
) -> tuple[BinaryIO, int]:
    """Open the regular file ``path`` for reading in pieces: ``(file, size)``; close the file when done.

    The same refusals as :func:`read_bytes_bounded`, before a byte is read; reading past ``limit``
    raises ``error``. For readers that take a file and read only what they need (an image's header
    before its pixels), so the whole file is not held in memory.
    """
    path = Path(path)
    fd, st = _open_checked(path, error, what, follow_symlinks)
    try:
        if st.st_size > limit:
            _too_large(path, limit, error, what, st.st_size)
        raw = _CappedReader(fd, limit, lambda: _too_large(path, limit, error, what, None))
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(raw, 1 << 16), st.st_size  # type: ignore[return-value]


# -------------------------------------------------------------------------------------------- writes
@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask, read once.

    On Linux it is read from ``/proc/self/status``; elsewhere (or on an old kernel) it is read by
    setting it and setting it back. That window would let another thread create a file with the
    temporary mask, so the temporary mask is the strictest one (077): nothing can come out wider.
    """
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8) & 0o777
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o077)
    os.umask(old)
    return old & 0o777


def default_file_mode() -> int:
    """The mode a new file gets, as ``open`` would give it: ``0o666`` less the umask (0644 under 022)."""
    return 0o666 & ~_umask()


def default_dir_mode() -> int:
    """The mode a new folder gets, as ``mkdir`` would give it: ``0o777`` less the umask (0755 under 022)."""
    return 0o777 & ~_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one.

    Permissions: a new file gets the default mode (``0o666`` less the umask, as ``open`` would give
    it), so a report or an ontology can be shared or served when the umask allows it. A file that
    already exists keeps its mode: one the user made private stays private when it is rewritten.
    ``mode`` sets the permission bits outright (e.g. ``0o600`` for something that must stay private).
    Nothing the workbench writes holds a secret (the API key is read from the environment only,
    settings refuse secret-looking keys and values, Claude exchanges are scrubbed before they are
    saved), so no caller needs ``mode`` today.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # default mode: 0o777 less the umask
    if mode is None:
        try:
            st = os.stat(path)
            mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else default_file_mode()
        except OSError:
            mode = default_file_mode()
    # mkstemp creates the file 0600: it stays so while it is written, and gets its mode before the rename.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            else:  # pragma: no cover - platforms without fchmod
                os.chmod(tmp, mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int | None = None) -> None:
    """Atomic UTF-8 text write (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)
