"""The job-side entry writer: a full disk never fails the worker, and the spool stays whole."""
import errno

import pytest

from jobjoker import runner, spool


class Disk:
    """Stands in for ``os.write`` on a spool file whose disk fills up when told."""

    def __init__(self):
        self.data = b""
        self.room = None  # bytes left; None: plenty

    def write(self, fd, view):
        if self.room is not None:
            taken = min(len(view), self.room)
            if taken == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= taken
            self.data += bytes(view[:taken])
            return taken
        self.data += bytes(view)
        return len(view)


class Sleepy:
    def wake(self):
        pass


@pytest.fixture
def disk(monkeypatch):
    disk = Disk()
    monkeypatch.setattr(runner.os, "write", disk.write)
    return disk


def messages(data):
    consumed, block = spool.parse_log_spool(data, final=False, when=1.0)
    assert consumed == len(data)  # whole blocks only: nothing torn is left behind
    return [e["message"] for e in spool.decode_entries(block)]


def test_a_full_disk_holds_entries_then_writes_them_with_what_was_lost(disk, monkeypatch):
    monkeypatch.setattr(runner, "HELD_BYTES", 4096)
    writer = runner.BlockWriter(99, Sleepy(), headed=True)
    writer.write("before")
    writer.flush()
    disk.room = 30  # the next block is cut short by the disk
    for i in range(1000):  # never raises into the worker
        writer.write("during %d" % i)
        writer.flush()
    assert spool.parse_log_spool(disk.data)[0] < len(disk.data)  # a block was cut short
    disk.room = None  # room again: the flusher thread writes what is held
    writer.flush()
    writer.write("after")
    writer.flush()
    seen = messages(disk.data)
    assert seen[0] == "before" and seen[-1] == "after"
    kept = [m for m in seen if m.startswith("during")]
    assert kept == ["during %d" % i for i in range(len(kept))]  # in order, no duplicates
    (marker,) = [m for m in seen if m.startswith("[JobJoker]")]
    lost = int(marker.split()[1])
    assert len(kept) + lost == 1000
    assert "the disk was full" in marker
    assert seen.index(marker) == len(kept) + 1  # where the lost entries would have been:
    # after the held ones (the first entries after the disk filled), before "after"


def test_a_huge_message_stays_whole_in_the_spool(disk):
    # The server splits an entry longer than spool.MAX_ENTRY_BYTES when it stores it (the log
    # store's split_long_entries, for every source alike); the runner writes it as it is.
    writer = runner.BlockWriter(99, Sleepy(), headed=False)
    text = "ab" * spool.MAX_ENTRY_BYTES
    writer.write(text)
    writer.flush()
    entries = spool.decode_entries(disk.data)
    assert [e["message"] for e in entries] == [text]


class AllocatingDisk(Disk):
    """A disk where space is taken first (``fallocate``), as the runner does for each block."""

    def room_for(self, fd, length):
        return self.room is None or length <= self.room


@pytest.fixture
def allocating_disk(monkeypatch):
    disk = AllocatingDisk()
    monkeypatch.setattr(runner.os, "write", disk.write)
    monkeypatch.setattr(runner, "_room_for", disk.room_for)
    return disk


def test_a_job_ending_on_a_full_disk_leaves_the_marker_and_no_torn_entry(
        allocating_disk, monkeypatch):
    disk = allocating_disk
    monkeypatch.setattr(runner, "HELD_BYTES", 4096)
    log = runner.BlockWriter(99, Sleepy(), headed=True)
    log.write("before")
    log.flush()
    disk.room = 300  # the disk fills: a block that does not fit is not begun
    for i in range(1000):
        log.write("during %d" % i)
        log.flush()
        assert spool.parse_log_spool(disk.data)[0] == len(disk.data)  # never torn
    freed = []
    monkeypatch.setattr(runner, "_release", lambda reserve: (
        freed.append(reserve), setattr(disk, "room", disk.room + 4096)))
    assert log.close(reserve=7)  # still full at the end: the reserve's room takes the marker
    assert freed == [7]
    seen = messages(disk.data)
    kept = [m for m in seen if m.startswith("during")]
    assert kept == ["during %d" % i for i in range(len(kept))]
    (marker,) = [m for m in seen if m.startswith("[JobJoker]")]
    assert seen[-1] == marker and "the disk was full" in marker
    assert len(kept) + int(marker.split()[1]) == 1000  # every entry written or counted


def test_a_disk_with_a_little_room_takes_what_fits(allocating_disk, monkeypatch):
    disk = allocating_disk
    writer = runner.BlockWriter(99, Sleepy(), headed=False)
    disk.room = 0
    for i in range(5000):
        writer.write("entry %05d %s" % (i, "x" * 40))
    disk.room = 100 * 1024  # room for about a third: whole blocks of it go out, in order
    writer.flush()
    seen = [e["message"][:11] for e in spool.decode_entries(disk.data)]
    assert 0 < len(seen) < 5000 and seen == ["entry %05d" % i for i in range(len(seen))]
    disk.room = None
    assert writer.close()
    assert len(spool.decode_entries(disk.data)) == 5000


def test_printed_crlf_lines_lose_the_carriage_return_and_a_bare_one_stays(disk):
    writer = runner.BlockWriter(99, Sleepy(), headed=True, mask=runner.Masker(["tok3n\r"]))
    stream = runner.LineStream(writer, 1)
    stream.write("read from a CRLF file\r\nsecret tok3n\r\n10%\r")
    stream.flush()  # print(..., end="\r", flush=True): an entry ending in \r
    writer.flush()
    assert messages(disk.data) == ["read from a CRLF file", "secret ********", "10%\r"]


def test_a_flushed_progress_bar_goes_out_up_to_its_last_carriage_return(disk):
    writer = runner.BlockWriter(99, Sleepy(), headed=True)
    stream = runner.LineStream(writer, 2)
    stream.write("Downloading\n")
    for percent in (0, 50, 100):  # as tqdm writes it: "\r" + the bar, flushed
        stream.write("\r%3d%%|bar|" % percent)
        stream.flush()
    stream.write("\n")
    stream.write("late partial")
    stream.drain()  # the job ends: all of it
    writer.flush()
    assert messages(disk.data) == ["Downloading", "\r", "  0%|bar|\r", " 50%|bar|\r",
                                   "100%|bar|", "late partial"]
