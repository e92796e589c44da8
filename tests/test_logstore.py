"""Chunked log storage: sequence numbers, pages across chunk boundaries, offsets (each backend)."""
import pytest

from jobjoker import models, spool
from jobjoker.events import EventHub
from jobjoker.logstore import CHUNK_BYTES, LogStore, split_block


@pytest.fixture
def store(database_url):
    db = models.open_database(database_url)
    hub = EventHub()
    published = []
    hub.subscribe(published.append)
    models.Job.create(id="job1", worker="W", status="active", created=0)
    yield LogStore(hub), published
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


def test_delete_removes_every_entry(store):
    logstore, _ = store
    logstore.append_blocks("job1", "log", [block_of(["a"] * 3000)])
    logstore.delete("job1")
    assert models.Chunk.select().count() == 0


def test_split_block_cuts_at_entry_boundaries():
    block = block_of(["m%d" % i + "y" * 100 for i in range(2000)])
    pieces = split_block(block)
    assert b"".join(pieces) == block
    assert all(p.endswith(b"\n") for p in pieces)
    assert all(len(p) <= CHUNK_BYTES for p in pieces)
    huge = block_of(["z" * (CHUNK_BYTES * 2)])
    assert split_block(huge) == [huge]  # one entry longer than a chunk stays whole
