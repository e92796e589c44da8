"""Schedules firing at their cron times (``jobjoker.scheduler``, ``jobjoker.schedulefire``):
jobs made in the owner's name and linked to the schedule, never twice for one time across
restarts and servers sharing a database, the missed-run and overlap policies, an owner who may
no longer run jobs, a worker that is gone. The expressions use croniter's sixth field
(seconds) so that a schedule fires every second."""
import os
import time

import pytest

from jobjoker import models, schedulespec
from tests.support import HELLO_WORKER, poll, until, workers_folder

EVERY_SECOND = "* * * * * *"

SLEEPER = '''import time
from jobjoker import Worker


class Sleeper(Worker):
    """Sleeps `seconds`."""

    parameters = {"seconds": {"type": "number", "default": 60}}

    def run(self):
        time.sleep(self.params["seconds"])
'''


# --- in the test's own server -----------------------------------------------------------------

async def create(api, worker, auth=None, **fields):
    body = dict({"worker": worker, "cron": EVERY_SECOND, "timezone": "UTC"}, **fields)
    reply = await api("POST", "/schedules", body, **({"auth": auth} if auth else {}))
    assert reply.code == 201, reply
    return reply.data[0]


async def schedule_of(api, schedule_id):
    return (await api("GET", "/schedules/%s" % schedule_id)).data[0]


async def wait_for_runs(api, schedule_id, check, what):
    async def reached():
        schedule = await schedule_of(api, schedule_id)
        return schedule if check(schedule) else None
    return await poll(reached, 60, what)


def jobs_of(schedule_id):
    return list(models.Job.select().where(models.Job.schedule_id == schedule_id))


@pytest.mark.gen_test(timeout=120)
async def test_a_schedule_fires_at_its_times(api, make_user, write_worker):
    write_worker("Hello", HELLO_WORKER)
    operator = make_user("otto", "operator")
    schedule = await create(api, "Hello", overlap="allow", auth=operator)
    fired = await wait_for_runs(api, schedule["id"], lambda s: sum(
        1 for r in s["runs"] if r["job"]) >= 2, "two firings")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    runs = [r for r in fired["runs"] if r["job"]]
    assert all(r["outcome"] == "started" and r["scheduled_for"] == int(r["scheduled_for"])
               for r in runs)  # whole seconds: the cron's times
    for run in runs:
        job = (await api("GET", "/jobs/%s" % run["job"])).data[0]
        assert job["schedule_id"] == schedule["id"] and job["created_by"] == "otto"
        assert job["worker"] == "Hello"
    assert fired["last_run"] == max(r["scheduled_for"] for r in fired["runs"])
    trail = (await api("GET", "/audit?action=schedule.fire&limit=100")).data
    assert {run["job"] for run in runs} <= {e["detail"].split()[2] for e in trail
                                             if e["target"] == schedule["id"]}
    assert all(e["actor"] is None for e in trail)  # the server's


@pytest.mark.gen_test(timeout=120)
async def test_overlap_skip_records_skipped_runs_while_a_job_runs(api, write_worker):
    write_worker("Sleeper", SLEEPER)
    schedule = await create(api, "Sleeper", overlap="skip")
    skipped = await wait_for_runs(api, schedule["id"], lambda s: any(
        r["outcome"] == "skipped" for r in s["runs"]), "a skipped run")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    [job] = jobs_of(schedule["id"])
    run = next(r for r in skipped["runs"] if r["outcome"] == "skipped")
    assert run["job"] is None and job.id in run["detail"] and "overlap: skip" in run["detail"]
    await api("PUT", "/jobs/%s/status" % job.id, "kill")


@pytest.mark.gen_test(timeout=120)
async def test_overlap_allow_runs_jobs_side_by_side(api, write_worker):
    write_worker("Sleeper", SLEEPER)
    schedule = await create(api, "Sleeper", overlap="allow")

    def two_active():
        return sum(1 for job in jobs_of(schedule["id"]) if job.status == "active") >= 2
    await poll(two_active, 60, "two jobs of the schedule active at once")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    for job in jobs_of(schedule["id"]):
        await api("PUT", "/jobs/%s/status" % job.id, "kill")


@pytest.mark.gen_test(timeout=120)
async def test_overlap_queue_makes_jobs_of_the_schedule(api, write_worker):
    """What holds with or without admission queueing: each firing makes a job of the
    schedule (none is skipped)."""
    write_worker("Sleeper", SLEEPER)
    schedule = await create(api, "Sleeper", overlap="queue")
    fired = await wait_for_runs(api, schedule["id"], lambda s: sum(
        1 for r in s["runs"] if r["job"]) >= 2, "two jobs")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    assert not any(r["outcome"] == "skipped" for r in fired["runs"])
    assert all(job.schedule_id == schedule["id"] for job in jobs_of(schedule["id"]))
    for job in jobs_of(schedule["id"]):
        await api("PUT", "/jobs/%s/status" % job.id, "kill")


@pytest.mark.gen_test(timeout=120)
async def test_overlap_queue_never_runs_two_jobs_of_the_schedule_at_once(api, write_worker):
    write_worker("Sleeper", SLEEPER)
    schedule = await create(api, "Sleeper", overlap="queue")
    fired = await wait_for_runs(api, schedule["id"], lambda s: sum(
        1 for r in s["runs"] if r["job"]) >= 2, "two jobs")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    assert any(r["outcome"] == "queued" for r in fired["runs"])
    jobs = sorted(jobs_of(schedule["id"]), key=lambda job: job.id)
    assert [job.status for job in jobs[:2]] == ["active", "queued"]
    await api("PUT", "/jobs/%s/status" % jobs[0].id, "kill")
    await poll(lambda: models.Job.get_by_id(jobs[1].id).status == "active", 60,
               "the queued job to start once the first ended")
    for job in jobs_of(schedule["id"]):
        await api("PUT", "/jobs/%s/status" % job.id, "kill")


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("change", ["disable", "viewer", "delete"])
async def test_an_owner_who_may_no_longer_run_jobs_pauses_the_schedule(api, make_user,
                                                                       write_worker, change):
    write_worker("Sleeper", SLEEPER)
    operator = make_user("otto", "operator")
    schedule = await create(api, "Sleeper", auth=operator)
    await wait_for_runs(api, schedule["id"], lambda s: s["runs"], "a first run")
    if change == "delete":
        reply = await api("DELETE", "/users/otto")
    else:
        reply = await api("PATCH", "/users/otto", {"disabled": True} if change == "disable"
                          else {"role": "viewer"})
    assert reply.code == 200, reply
    paused = await wait_for_runs(api, schedule["id"], lambda s: s["paused"], "the pause")
    words = {"disable": "otto is disabled", "viewer": "otto is now a viewer",
             "delete": "otto was deleted"}[change]
    assert words in paused["paused_reason"] and paused["next_runs"] == []
    trail = (await api("GET", "/audit?action=schedule.pause")).data
    assert trail[0]["target"] == schedule["id"] and words in trail[0]["detail"]
    for job in jobs_of(schedule["id"]):
        await api("PUT", "/jobs/%s/status" % job.id, "kill")


@pytest.mark.gen_test(timeout=120)
async def test_a_worker_gone_records_failed_runs_and_keeps_the_times(api, write_worker):
    path = write_worker("Hello", HELLO_WORKER)
    schedule = await create(api, "Hello", overlap="allow")
    await wait_for_runs(api, schedule["id"], lambda s: any(r["job"] for r in s["runs"]),
                        "a job")
    os.remove(path)
    failed = await wait_for_runs(api, schedule["id"], lambda s: s["runs"][0]["outcome"]
                                 == "failed", "a failed run")
    await api("POST", "/schedules/%s/pause" % schedule["id"])
    run = failed["runs"][0]
    assert run["job"] is None and "Hello" in run["detail"]
    assert failed["paused"] is None and len(failed["next_runs"]) == 5
    assert failed["next_run"] > run["scheduled_for"]  # it moved on to its next time


# --- real servers, restarted ------------------------------------------------------------------

@pytest.fixture
def start_server(servers, tmp_path, database_url):
    """``start_server(name, node)``: a real server on this test's database."""
    workers = workers_folder(tmp_path / "workers", {"Hello": HELLO_WORKER}, samples=())

    def start(name="one", node="test-node"):
        root = tmp_path / name
        root.mkdir(exist_ok=True)
        return servers("--database", database_url, "--node", node, root=root,
                       workers_dir=workers).wait_ready()
    return start


@pytest.fixture
def db(database_url):
    """The test's database over a connection of its own: ``with db: ...``."""
    database = models.make_database(database_url)
    yield database.bind_ctx([models.Schedule, models.ScheduleRun, models.Job])
    database.close()


def runs_with_jobs(server, schedule_id):
    return [r for r in server.api("GET", "/schedules/%s" % schedule_id)[0]["runs"]
            if r["job"]]


def assert_never_twice(db, schedule_id):
    """Each time fired once, each job made by one run, no job without its run."""
    with db:
        runs = list(models.ScheduleRun.select().where(
            models.ScheduleRun.schedule == schedule_id))
        jobs = [job.id for job in models.Job.select().where(
            models.Job.schedule_id == schedule_id)]
    times = [run.scheduled_for for run in runs]
    made = [run.job for run in runs if run.job]
    assert len(times) == len(set(times))
    assert sorted(made) == sorted(jobs) and len(set(jobs)) == len(jobs)
    return runs


@pytest.mark.both_databases
@pytest.mark.timeout(240)
def test_after_restarts_it_fires_again_and_never_twice(start_server, db):
    server = start_server()
    schedule = server.api("POST", "/schedules", {"worker": "Hello", "cron": EVERY_SECOND,
                                                 "overlap": "allow"})[0]
    until(lambda: len(runs_with_jobs(server, schedule["id"])) >= 2, what="two firings")
    for restart in (server.kill, server.stop):  # a crash, then a clean stop
        before = time.time()
        restart()
        server.start().wait_ready()
        until(lambda: any(r["scheduled_for"] > before for r in runs_with_jobs(
            server, schedule["id"])), what="a firing after the restart")
    server.api("POST", "/schedules/%s/pause" % schedule["id"])
    assert len(assert_never_twice(db, schedule["id"])) >= 3


@pytest.mark.both_databases
@pytest.mark.timeout(240)
def test_two_servers_on_one_database_fire_each_time_once(start_server, db):
    first = start_server("first", node="first")
    second = start_server("second", node="second")
    schedule = first.api("POST", "/schedules", {"worker": "Hello", "cron": EVERY_SECOND,
                                                "overlap": "allow"})[0]
    until(lambda: len(runs_with_jobs(second, schedule["id"])) >= 6, what="six firings")
    first.api("POST", "/schedules/%s/pause" % schedule["id"])
    assert_never_twice(db, schedule["id"])


@pytest.mark.both_databases
@pytest.mark.timeout(240)
def test_missed_runs_across_a_restart_skip_or_run_once(start_server, db):
    server = start_server()
    daily = {"worker": "Hello", "cron": "0 3 * * *", "timezone": "UTC"}
    skip = server.api("POST", "/schedules", dict(daily, missed="skip"))[0]
    once = server.api("POST", "/schedules", dict(daily, missed="run_once"))[0]
    server.stop()
    # as if no server had run for four days: its next run is four days ago
    first_missed = schedulespec.next_run("0 3 * * *", "UTC", time.time() - 4 * 86400)
    with db:
        models.Schedule.update(next_run=first_missed).where(
            models.Schedule.id.in_([skip["id"], once["id"]])).execute()
    server.start().wait_ready()

    def fired(schedule_id):
        schedule = server.api("GET", "/schedules/%s" % schedule_id)[0]
        return schedule if schedule["runs"] else None
    skipped, ran = until(lambda: fired(skip["id"]), what="the missed skip"), \
        until(lambda: fired(once["id"]), what="the missed run")
    [run] = skipped["runs"]
    assert run["outcome"] == "skipped" and run["job"] is None
    assert run["scheduled_for"] == first_missed and "missed: skip" in run["detail"]
    [run] = ran["runs"]
    assert run["outcome"] == "started" and run["job"]
    assert "4 missed times" in run["detail"] and "run_once" in run["detail"]
    for schedule in (skipped, ran):
        assert schedule["next_run"] > time.time()
    assert_never_twice(db, once["id"])
    with db:
        assert models.Job.select().where(models.Job.schedule_id == skip["id"]).count() == 0
        assert models.Job.select().where(models.Job.schedule_id == once["id"]).count() == 1
