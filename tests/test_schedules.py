"""Schedules through the API (``/schedules``): create, read, change, pause, resume, delete,
run now; bad input refused naming the field with nothing stored; roles; secret parameters
sealed and masked; the audit trail. Firing at cron times is in test_schedule_firing.py."""
import pytest

from jobjoker import models, secretbox
from jobjoker.parameters import MASK

pytestmark = pytest.mark.gen_test(timeout=120)

ECHO = '''from jobjoker import Worker


class Echo(Worker):
    """Logs its parameters (the secret one by its length)."""

    parameters = {
        "count": {"type": "integer", "default": 1},
        "token": {"type": "string", "secret": True, "required": True},
    }

    def run(self):
        self.log("count=%s token-length=%d" % (self.params["count"], len(self.params["token"])))
'''

NIGHTLY = {"name": "nightly", "worker": "Echo", "parameters": {"count": 2, "token": "s3cret!"},
           "cron": "0 3 * * *", "timezone": "Europe/Berlin"}


def schedule_count():
    return models.Schedule.select().count()


async def create(api, body=None, auth=None):
    kwargs = {"auth": auth} if auth else {}
    reply = await api("POST", "/schedules", body or NIGHTLY, **kwargs)
    assert reply.code == 201, reply
    return reply.data[0]


async def test_create_read_list_and_the_next_five_times(api, write_worker):
    write_worker("Echo", ECHO)
    schedule = await create(api)
    assert schedule["owner"] == "admin" and schedule["worker"] == "Echo"
    assert schedule["parameters"] == {"count": 2, "token": MASK}
    assert schedule["missed"] == "skip" and schedule["overlap"] == "skip"
    assert schedule["paused"] is None and schedule["runs"] == []
    times = schedule["next_runs"]
    assert len(times) == 5 and times == sorted(times) and times[0] == schedule["next_run"]
    # 03:00 in Berlin is 01:00 or 02:00 UTC, a day apart
    assert all(86400 - 3600 <= b - a <= 86400 + 3600 for a, b in zip(times, times[1:]))
    read = (await api("GET", "/schedules/%s" % schedule["id"])).data[0]
    assert read["next_runs"] == times
    listed = await api("GET", "/schedules")
    assert [s["id"] for s in listed.data] == [schedule["id"]]
    assert listed.headers["X-Total-Count"] == "1"


async def test_secret_parameters_are_sealed_and_never_shown(api, write_worker):
    write_worker("Echo", ECHO)
    schedule = await create(api)
    row = models.Schedule.get_by_id(schedule["id"])
    assert "s3cret!" not in row.parameters and secretbox.is_sealed(row.secret_parameters)
    assert "s3cret!" not in row.secret_parameters
    # a change that sends the masked value back keeps the secret
    changed = await api("PATCH", "/schedules/%s" % schedule["id"],
                        {"parameters": {"count": 3, "token": MASK}})
    assert changed.code == 200, changed
    assert changed.data[0]["parameters"] == {"count": 3, "token": MASK}
    ran = await api("POST", "/schedules/%s/run" % schedule["id"])
    assert ran.code == 201, ran
    job_id = ran.data[0]["runs"][0]["job"]
    await wait_for_end(api, job_id)
    lines = [e["message"] for e in (await api("GET", "/jobs/%s/log" % job_id)).data]
    assert "count=3 token-length=7" in lines


async def wait_for_end(api, job_id):
    from tests.support import FINAL_STATUSES, poll

    async def ended():
        job = (await api("GET", "/jobs/%s" % job_id)).data[0]
        return job if job["status"] in FINAL_STATUSES else None
    return await poll(ended, 60, "job %s to end" % job_id)


@pytest.mark.parametrize("change, field, words", [
    ({"cron": "61 * * * *"}, "cron", "out of range"),
    ({"cron": "a b c d e"}, "cron", "does not parse"),
    ({"cron": "* * * *"}, "cron", "five"),
    ({"cron": "0 0 30 2 *"}, "cron", "never matches"),
    ({"cron": None}, "cron", "missing"),
    ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({"timezone": "../../etc/passwd"}, "timezone", "unknown time zone"),
    ({"missed": "later"}, "missed", "skip, run_once"),
    ({"overlap": "sometimes"}, "overlap", "skip, queue, allow"),
    ({"worker": "Nobody"}, "worker", "Nobody"),
    ({"parameters": {"count": "many", "token": "x"}}, "parameters", "count"),
    ({"parameters": {"count": 1}}, "parameters", "token"),
    ({"parameters": [1]}, "parameters", "object"),
    ({"timeout": -1}, "timeout", "positive"),
    ({"name": "x" * 101}, "name", "100"),
    ({"crom": "* * * * *"}, None, "did you mean"),
])
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
        api, write_worker, change, field, words):
    write_worker("Echo", ECHO)
    reply = await api("POST", "/schedules", dict(NIGHTLY, **change))
    assert reply.code == 400, reply
    message = reply.json["message"]
    assert words in message
    if field:
        assert message.startswith(field + ":"), message
    assert schedule_count() == 0
    # the same refused on a change, which changes nothing
    schedule = await create(api)
    before = models.Schedule.get_by_id(schedule["id"])
    if "crom" not in change and change.get("cron", "") is not None:
        reply = await api("PATCH", "/schedules/%s" % schedule["id"], change)
        assert reply.code == 400 and words in reply.json["message"], reply
    after = models.Schedule.get_by_id(schedule["id"])
    assert (after.revision, after.cron, after.parameters) == (
        before.revision, before.cron, before.parameters)


async def test_roles_viewer_reads_operator_changes(api, make_user, write_worker):
    write_worker("Echo", ECHO)
    viewer = make_user("vera", "viewer")
    operator = make_user("otto", "operator")
    refused = await api("POST", "/schedules", NIGHTLY, auth=viewer)
    assert refused.code == 403 and schedule_count() == 0
    schedule = await create(api, auth=operator)
    assert schedule["owner"] == "otto"
    path = "/schedules/%s" % schedule["id"]
    assert (await api("GET", path, auth=viewer)).code == 200
    assert (await api("GET", "/schedules", auth=viewer)).code == 200
    for method, suffix, body in (("PATCH", "", {"name": "x"}), ("POST", "/pause", None),
                                 ("POST", "/resume", None), ("POST", "/run", None),
                                 ("DELETE", "", None)):
        assert (await api(method, path + suffix, body, auth=viewer)).code == 403
    assert (await api("PATCH", path, {"name": "renamed"}, auth=operator)).code == 200
    assert (await api("POST", path + "/pause", auth=operator)).code == 200
    assert (await api("DELETE", path, auth=operator)).code == 200
    assert schedule_count() == 0


async def test_pause_resume_change_and_delete(api, write_worker):
    write_worker("Echo", ECHO)
    schedule = await create(api)
    path = "/schedules/%s" % schedule["id"]
    paused = (await api("POST", path + "/pause")).data[0]
    assert paused["paused"] and paused["paused_reason"] == "paused by admin"
    assert paused["next_runs"] == [] and paused["next_run"] is None
    assert (await api("POST", path + "/pause")).code == 409
    resumed = (await api("POST", path + "/resume")).data[0]
    assert resumed["paused"] is None and len(resumed["next_runs"]) == 5
    assert (await api("POST", path + "/resume")).code == 409
    changed = (await api("PATCH", path, {"cron": "@hourly", "timezone": "UTC",
                                         "overlap": "allow"})).data[0]
    assert changed["cron"] == "@hourly" and changed["overlap"] == "allow"
    assert all(t % 3600 == 0 for t in changed["next_runs"])
    assert changed["parameters"] == {"count": 2, "token": MASK}  # the secret kept
    assert (await api("DELETE", path)).code == 200
    assert (await api("GET", path)).code == 404
    actions = [e["action"] for e in (await api("GET", "/audit?limit=50")).data
               if e["target"] == schedule["id"]]
    for action in ("schedule.create", "schedule.pause", "schedule.resume",
                   "schedule.update", "schedule.delete"):
        assert action in actions


async def test_run_now_makes_a_job_in_the_owners_name(api, make_user, write_worker):
    write_worker("Echo", ECHO)
    operator = make_user("otto", "operator")
    schedule = await create(api, auth=operator)
    reply = await api("POST", "/schedules/%s/run" % schedule["id"], auth=operator)
    assert reply.code == 201, reply
    [run] = reply.data[0]["runs"]
    assert run["outcome"] == "started" and run["job"]
    job = await wait_for_end(api, run["job"])
    assert job["schedule_id"] == schedule["id"] and job["created_by"] == "otto"
    assert job["status"] == "done"
    assert reply.data[0]["next_run"] == schedule["next_run"]  # its cron times are unchanged
    trail = (await api("GET", "/audit?action=schedule.run")).data
    assert trail[0]["target"] == schedule["id"] and run["job"] in trail[0]["detail"]


async def test_a_disabled_owner_pauses_the_schedule_on_its_next_run(api, make_user,
                                                                    write_worker):
    write_worker("Echo", ECHO)
    operator = make_user("otto", "operator")
    schedule = await create(api, auth=operator)
    assert (await api("PATCH", "/users/otto", {"disabled": True})).code == 200
    reply = await api("POST", "/schedules/%s/run" % schedule["id"])
    assert reply.code == 409 and "otto is disabled" in reply.json["message"], reply
    read = (await api("GET", "/schedules/%s" % schedule["id"])).data[0]
    assert read["paused"] and "otto is disabled" in read["paused_reason"]
    assert models.Job.select().count() == 0
    refused = await api("POST", "/schedules/%s/resume" % schedule["id"])
    assert refused.code == 409 and "otto is disabled" in refused.json["message"]


async def test_a_deleted_worker_records_a_failed_run_and_keeps_the_times(api, write_worker):
    write_worker("Echo", ECHO)
    schedule = await create(api)
    assert (await api("DELETE", "/workers/Echo")).code == 200
    reply = await api("POST", "/schedules/%s/run" % schedule["id"])
    assert reply.code == 200, reply
    read = reply.data[0]
    [run] = read["runs"]
    assert run["outcome"] == "failed" and run["job"] is None and "Echo" in run["detail"]
    assert read["paused"] is None and read["next_runs"] == schedule["next_runs"]
