"""Chunked log storage: sequence numbers, pages across chunk boundaries, offsets, batched
deletion (each backend). The log store runs on the storage's threads; here its functions are
called directly, each write in a transaction of its own, as the writer thread does."""
import pytest

from jobjoker import models, spool
from jobjoker.logstore import CHUNK_BYTES, LogStore, split_block, split_long_entries
from jobjoker.storage import Transaction


class Store:
    """A LogStore whose writes each run in a transaction; ``published`` holds the events of the
    committed ones, in order."""

    def __init__(self, db):
        self.db = db
        self.logstore = LogStore()
        self.published = []

    def __getattr__(self, name):
        method = getattr(self.logstore, name)
        if name not in ("append_blocks", "append_message", "delete_some"):
            return method

        def in_transaction(*args, **kwargs):
            tx = Transaction(self.db)
            with self.db.atomic():
                result = method(tx, *args, **kwargs)
            self.published += tx.events
            return result
        return in_transaction


@pytest.fixture
def store(database_url):
    db = models.open_database(database_url)
    models.Job.create(id="job1", worker="W", status="active", created=0)
    store = Store(db)
    yield store, store.published
    db.close()
    models.database.initialize(None)


def block_of(messages):
    return b"".join(spool.encode_entry(m, when=1.0) for m in messages)


def test_sequence_numbers_follow_on_and_counters_track_them(store):
    logstore, published = store
    assert logstore.append_blocks("job1", "log", [block_of(["a", "b"])]) == 0
    assert logstore.append_message("job1", "log", "c") == 2
    assert logstore.append_message("job1", "response", "r") == 0
    job = models.Job.get_by_id("job1")
    assert (job.log_count, job.response_count) == (3, 1)
    assert [m["message"] for m in logstore.read("job1", "log")] == ["a", "b", "c"]
    assert [(e["stream"], e["seq"], e["count"]) for e in published] == [
        ("log", 0, 2), ("log", 2, 1), ("response", 0, 1)]


def test_pages_across_many_chunks(store):
    logstore, _ = store
    messages = ["line %05d %s" % (i, "x" * 90) for i in range(5000)]  # ~0.5 MB: several chunks
    logstore.append_blocks("job1", "log", [block_of(messages[:1234])])
    logstore.append_blocks("job1", "log", [block_of(messages[1234:])])
    assert models.Chunk.select().count() > 5
    for offset, limit in [(0, 10), (1230, 10), (1233, 2), (4990, 100), (0, 5000), (2500, 1),
                          (5000, 10), (7000, 10)]:
        page = [e["message"] for e in logstore.read("job1", "log", offset, limit)]
        assert page == messages[offset:offset + limit], (offset, limit)


def test_offsets_are_committed_with_the_entries(store):
    logstore, _ = store
    logstore.append_blocks("job1", "log", [block_of(["a"])], {"log_offset": 123})
    assert models.Job.get_by_id("job1").log_offset == 123


def test_unknown_job_and_bad_pages(store):
    from jobjoker.errors import BadRequest, NotFound
    logstore, _ = store
    with pytest.raises(NotFound):
        logstore.append_message("nope", "log", "x")
    with pytest.raises(BadRequest):
        logstore.read("job1", "log", -1, 10)
    assert logstore.read("job1", "log", 0, 0) == []


def test_deletion_goes_in_batches_until_every_entry_is_gone(store):
    logstore, _ = store
    models.Job.create(id="job2", worker="W", status="active", created=0)
    for _ in range(3):
        logstore.append_blocks("job1", "log", [block_of(["a" * 100] * 2000)])  # ~0.2 MB
        logstore.append_blocks("job1", "response", [block_of(["r" * 100] * 700)])
    logstore.append_blocks("job2", "log", [block_of(["b"])])
    chunks = models.Chunk.select().where(models.Chunk.job == "job1").count()
    assert chunks > 10
    batches = []
    while deleted := logstore.delete_some("job1", batch=4):
        batches.append(deleted)
    assert sum(batches) == chunks and max(batches) <= 8  # at most a batch from each stream
    assert models.Chunk.select().where(models.Chunk.job == "job1").count() == 0
    assert [e["message"] for e in logstore.read("job2", "log")] == ["b"]  # others untouched


def test_chunks_whose_job_is_gone_are_found(store):
    logstore, _ = store
    logstore.append_blocks("job1", "log", [block_of(["a"])])
    assert logstore.jobs_with_orphaned_entries() == []
    models.Job.delete().where(models.Job.id == "job1").execute()  # a deletion a crash cut short
    assert logstore.jobs_with_orphaned_entries() == ["job1"]


def test_split_block_cuts_at_entry_boundaries():
    block = block_of(["m%d" % i + "y" * 100 for i in range(2000)])
    pieces = split_block(block)
    assert b"".join(pieces) == block
    assert all(p.endswith(b"\n") for p in pieces)
    assert all(len(p) <= CHUNK_BYTES for p in pieces)
    huge = block_of(["z" * (CHUNK_BYTES * 2)])
    assert split_block(huge) == [huge]  # one entry longer than a chunk stays whole


def test_long_entries_are_split_between_characters_and_escapes():
    text = ("é\\\n" * 40000) + "end"  # two-byte characters and escapes at every position
    block = split_long_entries(spool.encode_entry(text, when=7.0), limit=1000)
    lines = block.split(b"\n")[:-1]
    assert len(lines) > 100 and all(len(line) <= 1000 for line in lines)
    entries = spool.decode_entries(block)
    assert all(e["time"] == 7.0 for e in entries)
    assert "".join(e["message"] for e in entries) == text
    short = block_of(["a", "b"])
    assert split_long_entries(short, limit=1000) is short


@pytest.fixture
def capped(store):
    logstore, published = store
    logstore.logstore.max_log_bytes = 200 * 1024
    return logstore, published


def test_a_log_past_its_cap_keeps_head_and_tail_with_a_marker(capped):
    logstore, published = capped
    messages = ["line %06d " % i + "x" * 60 for i in range(40000)]  # ~3 MB in all
    for start in range(0, len(messages), 700):
        logstore.append_blocks("job1", "log", [block_of(messages[start:start + 700])])
    job = models.Job.get_by_id("job1")
    marker = job.log_marker_seq
    assert job.log_count == len(messages) + 1  # every entry has its number, the marker too
    assert job.log_bytes <= 200 * 1024
    stored = models.Chunk.select().where(models.Chunk.stream == 0)
    assert sum(len(bytes(c.data)) for c in stored) == job.log_bytes
    # The head: the first entries, up to half the cap, then the marker.
    head = logstore.read("job1", "log", 0, marker)
    assert [e["message"] for e in head] == messages[:marker]
    assert 90 * 1024 < len(block_of(messages[:marker])) <= 100 * 1024
    (entry,) = logstore.read("job1", "log", marker, 1)
    assert entry["message"].startswith("[JobJoker] %d entries were dropped here" % (
        job.log_dropped))
    # The gap, then the tail: the last entries, in order, with their own numbers.
    first_tail = marker + 1 + job.log_dropped
    assert logstore.read("job1", "log", marker + 1, job.log_dropped) == []
    tail = logstore.read("job1", "log", first_tail, job.log_count)
    assert [e["seq"] for e in tail] == list(range(first_tail, job.log_count))
    assert [e["message"] for e in tail] == messages[first_tail - 1:]
    # Chunks go whole: the tail holds at least half the cap less one chunk.
    assert 100 * 1024 - CHUNK_BYTES < len(block_of(messages[first_tail - 1:])) <= 100 * 1024
    # read_from steps over the gap; a page across it holds the marker and the tail.
    assert logstore.read_from("job1", "log", marker + 1, 3)[0]["seq"] == first_tail
    across = logstore.read("job1", "log", marker, job.log_dropped + 3)
    assert [e["seq"] for e in across] == [marker, first_tail, first_tail + 1]
    # Live subscribers got every entry, gap or not.
    live = [e for e in published if e["stream"] == "log"]
    assert sum(e["count"] for e in live) == job.log_count


def test_the_response_is_not_capped(capped):
    logstore, _ = capped
    for _ in range(10):
        logstore.append_blocks("job1", "response", [block_of(["r" * 100] * 300)])
    job = models.Job.get_by_id("job1")
    assert job.response_count == 3000 and job.log_marker_seq is None
