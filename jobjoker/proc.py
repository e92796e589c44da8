"""What ``/proc`` says of a process: the one parser of ``/proc/PID/stat``.

Contract: ``stat_fields(pid)`` returns the fields of ``/proc/PID/stat`` after the command name
(field 3, the state, is index 0), or None when the process is gone; ``start_time``, ``state``
and ``parent`` read one of them. ``boot_id()`` names this boot of the machine. A pid is reused
once its process is reaped, so a pid alone never proves identity: its start time (clock ticks
since boot) with the boot id does. Standard library only: the supervisor uses it.
"""
import os


def stat_fields(pid):
    """The fields of /proc/PID/stat from field 3 on (as bytes), or None if there is none."""
    try:
        fd = os.open("/proc/%d/stat" % pid, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not stat:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat[stat.rindex(b")") + 2:].split()


def start_time(pid):
    """Field 22: when the process started, in clock ticks since boot (None if it is gone)."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields else None


def state(pid):
    """Field 3: ``R``, ``S``, ``Z`` (a zombie: ended, not yet reaped) ...; None if gone."""
    fields = stat_fields(pid)
    return fields[0].decode() if fields else None


def parent(pid):
    """Field 4: the parent's pid (None if the process is gone)."""
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def holds_file(pid, identity):
    """Whether process ``pid`` has the file ``identity`` (``(st_dev, st_ino)``) open: True,
    False, or None when ``/proc`` will not say (the process is gone, or is not ours to look
    into: another user's, to a caller without ``CAP_SYS_PTRACE``). Its stdout and stderr are
    looked at first."""
    folder = "/proc/%d/fd" % pid
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    for name in sorted(names, key=lambda name: (name not in ("1", "2"), name)):
        try:
            info = os.stat(os.path.join(folder, name))
        except OSError:
            continue  # closed meanwhile
        if (info.st_dev, info.st_ino) == tuple(identity):
            return True
    return False


def boot_id():
    """This boot's id (``/proc/sys/kernel/random/boot_id``), or None where there is none."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None
