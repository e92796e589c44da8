"""Running a job again: ``POST /jobs/ID/rerun`` against a real server and supervisor.

The new job goes through the creation path every job goes through: parameters merged over the
old ones and checked, secret ones not copied (the reply says which must be given again, and a
required one missing is the usual refusal), the old ``timeout`` kept unless given, linked by
``rerun_of``, audited as a ``job.create`` "rerun of" the old job; a refusal creates nothing; a
job whose worker was deleted cannot run again (404 saying so)."""
import pytest

from jobjoker import models

pytestmark = pytest.mark.gen_test(timeout=120)

ECHO = '''from jobjoker import Worker


class Echo(Worker):
    """Logs its parameters (the secret one masked by the server)."""

    parameters = {
        "count": {"type": "integer", "default": 1},
        "name": {"type": "string", "default": "world"},
        "token": {"type": "string", "secret": True, "required": True},
    }

    def run(self):
        self.log("count=%s name=%s token-length=%d" % (
            self.params["count"], self.params["name"], len(self.params["token"])))
'''

PLAIN = '''from jobjoker import Worker


class Plain(Worker):
    """No declared parameters."""

    def run(self):
        self.log("plain %r" % sorted(self.params.items()))
'''


async def log_lines(api, job_id):
    return [e["message"] for e in (await api("GET", "/jobs/%s/log" % job_id)).data]


def job_count():
    return models.Job.select().count()


async def test_rerun_merges_parameters_links_and_drops_secrets(api, run_job, write_worker,
                                                               wait_for_status):
    write_worker("Echo", ECHO)
    old = await run_job("Echo", {"count": 2, "name": "ann", "token": "s3cret"}, wait=True)
    assert old["status"] == "done" and old["parameters"]["token"] == "********"

    refused = await api("POST", "/jobs/%s/rerun" % old["id"], {"parameters": {"count": 5}})
    assert refused.code in (400, 422) and "token" in refused.json["message"]  # give it again

    before = job_count()
    reply = await api("POST", "/jobs/%s/rerun" % old["id"],
                      {"parameters": {"count": 5, "token": "again!"}})
    assert reply.code == 201, reply
    new = reply.data[0]
    assert job_count() == before + 1
    assert new["rerun_of"] == old["id"] and new["worker"] == "Echo"
    assert new["parameters"] == {"count": 5, "name": "ann", "token": "********"}
    assert reply.headers["Location"].endswith("/jobs/%s" % new["id"])
    assert "rerun of job %s" % old["id"] in reply.json["message"]
    assert "not copied" not in reply.json["message"]  # it was given again
    ended = await wait_for_status(new["id"])
    assert ended["status"] == "done"
    assert "count=5 name=ann token-length=6" in await log_lines(api, new["id"])

    trail = (await api("GET", "/audit?action=job.create&limit=5")).data
    assert any(e["target"] == new["id"] and "rerun of %s" % old["id"] in e["detail"]
               for e in trail)


async def test_the_reply_names_the_secrets_not_copied(api, write_worker, wait_for_status):
    write_worker("Optional", ECHO.replace("class Echo", "class Optional").replace(
        '"required": True', '"default": ""'))
    old = (await api("POST", "/jobs", {"worker": "Optional",
                                       "parameters": {"token": "abc"}})).data[0]
    idle = await api("POST", "/jobs/%s/rerun" % old["id"], {"start": False})
    assert idle.code == 201 and idle.data[0]["status"] == "idle"
    assert "secret parameters not copied: token; give them again" in idle.json["message"]
    reply = await api("POST", "/jobs/%s/rerun" % old["id"])
    assert "secret parameters not copied: token" in reply.json["message"]
    await wait_for_status(reply.data[0]["id"])
    lines = await log_lines(api, reply.data[0]["id"])
    assert "count=1 name=world token-length=0" in lines  # its default, not the old secret


async def test_an_empty_body_runs_it_again_as_it_was(api, run_job, write_worker,
                                                     wait_for_status):
    write_worker("Plain", PLAIN)
    old = await run_job("Plain", {"a": 1}, wait=True)
    reply = await api("POST", "/jobs/%s/rerun" % old["id"])
    assert reply.code == 201 and reply.data[0]["status"] in ("active", "done")
    assert reply.data[0]["parameters"] == {"a": 1}
    await wait_for_status(reply.data[0]["id"])
    assert "plain [('a', 1)]" in await log_lines(api, reply.data[0]["id"])


@pytest.mark.parametrize("body, status, words", [
    ({"parameters": {"count": "many", "token": "x"}}, 422, "count"),
    ({"parameters": [1]}, 400, "parameters"),
    ({"start": "yes"}, 400, "start"),
    ({"timeout": -1}, 400, "timeout"),
    ({"timeout": "soon"}, 400, "timeout"),
    ({"paramters": {}}, 400, "did you mean"),
    ([1, 2], 400, "JSON object"),
    ("null", 400, "JSON object"),
])
async def test_bad_reruns_create_nothing(api, write_worker, body, status, words):
    write_worker("Echo", ECHO)
    old = (await api("POST", "/jobs", {"worker": "Echo", "parameters": {"token": "t"}})).data[0]
    before = job_count()
    reply = await api("POST", "/jobs/%s/rerun" % old["id"], body)
    assert reply.code == status, reply
    assert words in reply.json["message"]
    assert job_count() == before


async def test_a_rerun_keeps_the_old_timeout_unless_given(api, write_worker):
    write_worker("Plain", PLAIN)
    old = (await api("POST", "/jobs", {"worker": "Plain"})).data[0]
    models.Job.update(timeout=30.0).where(models.Job.id == old["id"]).execute()
    kept = await api("POST", "/jobs/%s/rerun" % old["id"], {"start": False})
    assert kept.data[0]["timeout"] == 30.0
    given = await api("POST", "/jobs/%s/rerun" % old["id"], {"start": False, "timeout": 5})
    assert given.data[0]["timeout"] == 5


async def test_a_job_whose_worker_was_deleted_cannot_run_again(api, write_worker):
    write_worker("Plain", PLAIN)
    old = (await api("POST", "/jobs", {"worker": "Plain"})).data[0]
    assert (await api("DELETE", "/workers/Plain")).code == 200
    before = job_count()
    reply = await api("POST", "/jobs/%s/rerun" % old["id"])
    assert reply.code == 404 and "was deleted" in reply.json["message"]
    assert job_count() == before
    assert (await api("POST", "/jobs/nosuchjob000/rerun")).code == 404


async def test_viewers_may_not_rerun(api, write_worker, make_user):
    write_worker("Plain", PLAIN)
    old = (await api("POST", "/jobs", {"worker": "Plain"})).data[0]
    viewer = make_user("watcher", "viewer")
    operator = make_user("runner", "operator")
    assert (await api("POST", "/jobs/%s/rerun" % old["id"], {}, auth=viewer)).code == 403
    reply = await api("POST", "/jobs/%s/rerun" % old["id"], {"start": False}, auth=operator)
    assert reply.code == 201 and reply.data[0]["created_by"] == "runner"
