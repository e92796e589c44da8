"""The inotify binding: which watched folders had news, from real events and from crafted ones
(the common 32-byte events read in one go, any other size one at a time, removed watches
left out)."""
import struct

from jobjoker import inotify


def event(wd, name, mask=inotify.IN_MODIFY, size=16):
    return struct.pack("iIII", wd, mask, 0, size) + name.ljust(size, b"\0")


def test_real_events_name_the_folders_written_to(tmp_path):
    watcher = inotify.Inotify()
    try:
        folders = [tmp_path / name for name in ("a", "b", "c")]
        for folder in folders:
            folder.mkdir()
        wds = [watcher.add_watch(str(folder)) for folder in folders]
        for folder in folders[:2]:
            for _ in range(50):
                with open(folder / "log.spool", "ab") as f:
                    f.write(b"x")
        assert watcher.read_watches() == set(wds[:2])
        assert watcher.read_watches() == set()  # read once
    finally:
        watcher.close()


def test_crafted_events_of_every_shape():
    common = b"".join(event(wd, b"log.spool") for wd in (1, 2, 1, 3) * 100)
    assert set(inotify._watches_of(common)) == {1, 2, 3}
    longer = common + event(4, b"run-end.json.tmp", size=32)  # a name past 16 bytes
    assert set(inotify._watches_of(longer)) == {1, 2, 3, 4}
    gone = common + event(5, b"", mask=inotify.IN_IGNORED)  # watch 5 was removed
    assert set(inotify._watches_of(gone)) == {1, 2, 3}
    assert set(inotify._watches_of(b"")) == set()
