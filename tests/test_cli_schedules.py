"""``jobjoker schedules list|show|add|edit|pause|resume|delete|run-now`` and the client's
schedule methods, as real processes against a real server."""
import pytest

from jobjoker.client import BadRequestError, NotFoundError
from tests.support import wait_for_end
from tests.test_cli import client, jj  # noqa: F401  (fixtures)


@pytest.mark.parametrize("command", ["list", "show", "add", "edit", "pause", "resume",
                                     "delete", "run-now"])
def test_each_command_has_help(jj, command):  # noqa: F811
    result = jj("schedules", command, "--help")
    assert result.returncode == 0 and "JOBJOKER_PASSWORD" in result.stdout


def test_add_list_edit_pause_resume_run_now_and_delete(jj, client):  # noqa: F811
    added = jj("schedules", "add", "TestWorker", "0 3 * * *", "--tz", "Europe/Berlin",
               "--name", "nightly", "-p", "count=2", "-p", "sleep=0", "--overlap", "allow")
    assert added.returncode == 0, added.stderr
    schedule_id = added.stdout.strip()
    schedule = client.schedule(schedule_id)
    assert schedule["parameters"] == {"count": 2, "sleep": 0}
    assert schedule["overlap"] == "allow" and schedule["timezone"] == "Europe/Berlin"

    listed = jj("schedules", "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith(schedule_id))
    assert "nightly" in row and "TestWorker" in row and "0 3 * * *" in row

    edited = jj("schedules", "edit", schedule_id, "--cron", "@hourly", "--json")
    assert edited.returncode == 0 and edited.json["cron"] == "@hourly"
    bad = jj("schedules", "edit", schedule_id, "--cron", "61 * * * *")
    assert bad.returncode != 0 and "cron:" in bad.stderr and "out of range" in bad.stderr
    assert client.schedule(schedule_id)["cron"] == "@hourly"

    assert jj("schedules", "pause", schedule_id).returncode == 0
    shown = jj("schedules", "show", schedule_id)
    assert "paused by admin" in shown.stdout and "- (paused)" in shown.stdout
    resumed = jj("schedules", "resume", schedule_id)
    assert resumed.returncode == 0 and "resumed; next run" in resumed.stdout

    ran = jj("schedules", "run-now", schedule_id)
    assert ran.returncode == 0, ran.stderr
    job = wait_for_end(client, ran.stdout.strip())
    assert job["schedule_id"] == schedule_id and job["status"] == "done"
    shown = jj("schedules", "show", schedule_id)
    assert "last runs:" in shown.stdout and ran.stdout.strip() in shown.stdout

    assert jj("schedules", "delete", schedule_id).returncode == 0
    assert jj("schedules", "show", schedule_id).returncode == 5


def test_client_methods(client):  # noqa: F811
    schedule = client.create_schedule("TestWorker", "@daily", "UTC", {"count": 1, "sleep": 0},
                                      name="daily", missed="run_once")
    assert len(schedule["next_runs"]) == 5 and schedule["missed"] == "run_once"
    assert schedule["id"] in [s["id"] for s in client.schedules()]
    assert client.update_schedule(schedule["id"], overlap="queue")["overlap"] == "queue"
    assert client.pause_schedule(schedule["id"])["paused"]
    assert client.resume_schedule(schedule["id"])["paused"] is None
    run = client.run_schedule(schedule["id"])["runs"][0]
    assert run["outcome"] == "started"
    wait_for_end(client, run["job"])
    with pytest.raises(BadRequestError) as refused:
        client.create_schedule("TestWorker", "@daily", "Mars/Olympus")
    assert refused.value.message.startswith("timezone:")
    client.delete_schedule(schedule["id"])
    with pytest.raises(NotFoundError):
        client.schedule(schedule["id"])
