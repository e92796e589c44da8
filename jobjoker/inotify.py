"""A minimal Linux inotify binding (ctypes), so the server learns of spool appends without polling.

Contract: ``Inotify()`` opens a non-blocking, close-on-exec inotify descriptor (``fileno()``);
``add_watch(path)`` returns a watch descriptor for modifications of the files in directory
``path``; ``read_watches()`` drains pending events and returns the set of watch descriptors that
fired (the server only needs to know *which* job has news, not what it was). Raises ``OSError``
where inotify is not available, so the caller can fall back to polling.
"""
import ctypes
import errno
import os
import struct

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_CREATE = 0x00000100
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)
_FAST_SIZE = 32  # an event whose name fits in 16 bytes

_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("inotify_init1", "inotify_add_watch", "inotify_rm_watch"):
            if not hasattr(libc, name):
                raise OSError(errno.ENOSYS, "inotify is not available on this system")
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        _libc = libc
    return _libc


def _check(result):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


class Inotify:
    """One inotify instance watching directories for file modifications."""

    def __init__(self):
        self._libc = _load_libc()
        self._fd = _check(self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))

    def fileno(self):
        return self._fd

    def add_watch(self, path, mask=IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE):
        return _check(self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask))

    def rm_watch(self, wd):
        # EINVAL: the watch is already gone (its directory was removed); that is fine.
        if self._libc.inotify_rm_watch(self._fd, wd) < 0 and ctypes.get_errno() != errno.EINVAL:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    def read_watches(self):
        fired = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return fired
            fired.update(_watches_of(data))

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _watches_of(data):
    """The watch descriptors of the events in ``data`` (IN_IGNORED ones left out)."""
    # Hundreds of jobs logging make tens of thousands of events a second, nearly all 32 bytes
    # long (a 16-byte header and a file name padded to 16: "log.spool"). Those are read as
    # 32-bit words, eight an event, in C; anything else one event at a time.
    if len(data) % _FAST_SIZE == 0:
        words = memoryview(data).cast("I")
        if set(words[3::8]) == {_FAST_SIZE - _EVENT.size} and not any(
                mask & IN_IGNORED for mask in set(words[1::8])):
            return words[0::8]
    fired, offset = [], 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _, length = _EVENT.unpack_from(data, offset)
        offset += _EVENT.size + length
        if not mask & IN_IGNORED:
            fired.append(wd)
    return fired

