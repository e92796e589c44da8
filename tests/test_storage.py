"""The database off the IOLoop (each backend): events only after commit and in order, reads that
never wait behind a write, writes one at a time in order, savepoints, a dropped connection
replaced; and the job store's one writer of the status, all or none, counting revisions."""
import threading

import peewee
import pytest

from jobjoker import jobstore, models
from jobjoker.errors import InvalidTransition
from jobjoker.events import EventHub
from jobjoker.states import ACTIONS, JobStatus
from jobjoker.storage import Storage


@pytest.fixture
def storage(database_url, io_loop):
    db = models.open_database(database_url)
    db.close()
    hub = EventHub()
    storage = Storage(db, hub)
    storage.published = []
    hub.subscribe(storage.published.append)
    yield storage
    io_loop.run_sync(storage.close)
    models.database.initialize(None)


def new_user(tx, name, fail=False):
    models.User.create(username=name, password_hash="x")
    tx.publish({"type": "user", "name": name})
    if fail:
        raise ValueError("changed my mind")
    return name


def user_names():
    return sorted(u.username for u in models.User.select())


@pytest.mark.gen_test(timeout=30)
async def test_events_go_out_after_commit_and_not_at_all_after_a_rollback(storage):
    assert await storage.transaction(new_user, "ann") == "ann"
    with pytest.raises(ValueError):
        await storage.transaction(new_user, "bob", fail=True)
    assert storage.published == [{"type": "user", "name": "ann"}]
    assert await storage.read(user_names) == ["ann"]


@pytest.mark.gen_test(timeout=30)
async def test_a_savepoint_undoes_its_part_and_its_events_alone(storage):
    def two_parts(tx):
        new_user(tx, "kept")
        try:
            with tx.savepoint():
                new_user(tx, "undone", fail=True)
        except ValueError:
            pass
    await storage.transaction(two_parts)
    assert await storage.read(user_names) == ["kept"]
    assert storage.published == [{"type": "user", "name": "kept"}]


@pytest.mark.gen_test(timeout=30)
async def test_writes_run_one_at_a_time_in_the_order_they_came(storage):
    import asyncio
    names = ["u%02d" % i for i in range(30)]
    await asyncio.gather(*(storage.transaction(new_user, name) for name in names))
    assert [e["name"] for e in storage.published] == names


@pytest.mark.gen_test(timeout=30)
async def test_a_read_does_not_wait_for_a_write_in_progress(storage):
    await storage.transaction(new_user, "before")
    inside, release = threading.Event(), threading.Event()

    def held(tx):
        new_user(tx, "during")
        inside.set()
        assert release.wait(20), "the read never came"
        return "done"
    write = storage.transaction(held)
    import asyncio
    await asyncio.get_running_loop().run_in_executor(None, inside.wait, 20)
    # The write holds its transaction (and SQLite's write lock) until the read has answered.
    assert await storage.read(user_names) == ["before"]
    assert storage.writing_for() > 0  # how long the write has run: /health's measure of a hang
    release.set()
    assert await write == "done"
    assert storage.writing_for() == 0
    assert await storage.read(user_names) == ["before", "during"]


@pytest.mark.gen_test(timeout=30)
async def test_a_thread_whose_connection_failed_connects_afresh(storage):
    def broken(tx):
        raise peewee.OperationalError("lost the connection")
    with pytest.raises(peewee.OperationalError):
        await storage.transaction(broken)
    assert await storage.transaction(new_user, "after") == "after"
    assert "after" in await storage.read(user_names)


def an_idle_job(tx, job_id):
    return jobstore.insert(tx, [{"id": job_id, "worker": "W", "status": "idle",
                                 "created": 1.0}])[0]


@pytest.mark.gen_test(timeout=30)
async def test_moving_many_jobs_is_all_or_none(storage):
    await storage.transaction(an_idle_job, "a")
    await storage.transaction(an_idle_job, "b")
    await storage.transaction(jobstore.transition, "b", JobStatus.ACTIVE)
    storage.published.clear()
    with pytest.raises(InvalidTransition, match="job b is active; only a job that is idle "
                                                 "or scheduled can start"):
        await storage.transaction(jobstore.transition_many, ["a", "b"], JobStatus.ACTIVE,
                                  only=ACTIONS["start"])
    assert (await storage.read(jobstore.get, "a")).status == "idle"  # rolled back
    assert storage.published == []


@pytest.mark.gen_test(timeout=30)
async def test_every_write_of_a_job_counts_a_revision(storage):
    job = await storage.transaction(an_idle_job, "a")
    assert job.revision == 0
    started = await storage.transaction(jobstore.transition, "a", JobStatus.ACTIVE, False,
                                        starttime=2.0)
    updated = await storage.transaction(jobstore.update, "a", pid=42)
    ended = await storage.transaction(jobstore.transition, "a", JobStatus.DONE, stoptime=3.0,
                                     reason="completed")
    assert [started.revision, updated.revision, ended.revision] == [1, 2, 3]
    # The unannounced start is not published; each announced copy carries its revision.
    assert [(e["action"], e["job"]["revision"]) for e in storage.published] == [
        ("created", 0), ("updated", 2), ("status", 3)]


@pytest.mark.gen_test(timeout=30)
async def test_end_hooks_see_every_final_move_inside_its_transaction(storage):
    # What follows a job's end (a retry, a webhook's delivery) is written by an end hook in the
    # transaction that ends it: it commits with the end, or not at all.
    seen = []

    def remember(tx, job):
        seen.append((job.id, job.status))
        models.User.create(username="after-" + job.id, password_hash="x")
    storage.end_hooks.append(remember)
    for job_id in "abc":
        await storage.transaction(an_idle_job, job_id)
    await storage.transaction(jobstore.transition_many, ["a", "b", "c"], JobStatus.ACTIVE)
    assert seen == []  # not an end

    await storage.transaction(jobstore.transition, "a", JobStatus.DONE, reason="completed")
    await storage.transaction(jobstore.transition_many, ["b"], JobStatus.ERROR, reason="exit")

    def end_then_fail(tx):
        jobstore.transition(tx, "c", JobStatus.STOP, reason="stopped")
        raise ValueError("rolled back")
    with pytest.raises(ValueError):
        await storage.transaction(end_then_fail)
    assert seen == [("a", "done"), ("b", "error"), ("c", "stop")]
    assert await storage.read(user_names) == ["after-a", "after-b"]  # c's went with its end
    assert (await storage.read(jobstore.get, "c")).status == "active"
