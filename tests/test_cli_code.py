"""``jobjoker rerun``, ``jobjoker code`` and ``jobjoker workers versions``, and the client's
``rerun``, ``job_code`` and ``worker_versions``, as real processes against a real server."""
import pytest

from tests.support import wait_for_end
from tests.test_cli import client, jj  # noqa: F401  (fixtures)

SECRETIVE = '''from jobjoker import Worker

VERSION = "@V@"


class Secretive(Worker):
    """Logs its count and how long its token is."""

    parameters = {
        "count": {"type": "integer", "default": 1},
        "token": {"type": "string", "secret": True, "default": ""},
    }

    def run(self):
        self.log("%s count=%d token=%d" % (VERSION, self.params["count"],
                                           len(self.params["token"])))
'''


@pytest.mark.parametrize("args", [["rerun"], ["code"], ["workers", "versions"]])
def test_the_new_commands_have_help(jj, args):  # noqa: F811
    result = jj(*args, "--help")
    assert result.returncode == 0 and "JOBJOKER_PASSWORD" in result.stdout


def test_rerun_follow_code_and_versions(jj, client):  # noqa: F811
    client.push_worker("Secretive", SECRETIVE.replace("@V@", "v1"))
    old = client.create_job("Secretive", {"count": 2, "token": "abc"}, start=True)
    wait_for_end(client, old["id"])

    result = jj("rerun", old["id"], "-p", "count=7", "--follow")
    assert result.returncode == 0, result.stderr
    assert "v1 count=7 token=0" in result.stdout  # the secret was not copied
    assert result.stderr == ("jobjoker: warning: secret parameters not copied: token; give "
                             "them again\n")
    again = jj("rerun", old["id"], "-p", "token=xy", "--json")
    assert again.returncode == 0 and again.json["rerun_of"] == old["id"]
    assert again.stderr == ""
    idle = jj("rerun", old["id"], "--no-start", "--json")
    assert idle.json["status"] == "idle"
    assert jj("rerun", "nosuchjob000").returncode == 5

    code = jj("code", old["id"])
    assert code.returncode == 0 and code.stdout == SECRETIVE.replace("@V@", "v1")
    client.push_worker("Secretive", SECRETIVE.replace("@V@", "v2"))
    diff = jj("code", old["id"], "--diff")
    assert '-VERSION = "v1"\n+VERSION = "v2"\n' in diff.stdout
    assert jj("code", old["id"], "--json").json["current"] is False

    versions = jj("workers", "versions", "Secretive")
    lines = versions.stdout.splitlines()
    assert lines[0].split() == ["HASH", "SAVED", "SAVED", "BY", "JOBS"]
    assert len(lines) == 3 and " admin " in lines[1]


def test_the_client_reruns_and_reads_code(client):  # noqa: F811
    client.push_worker("Secretive", SECRETIVE.replace("@V@", "client"))
    old = client.create_job("Secretive", {"count": 3}, start=True)
    wait_for_end(client, old["id"])
    new, message = client.rerun(old["id"], {"count": 4}, start=False, with_message=True)
    assert new["rerun_of"] == old["id"] and new["parameters"]["count"] == 4
    assert "rerun of job %s" % old["id"] in message
    code = client.job_code(old["id"])
    assert code["source"] == SECRETIVE.replace("@V@", "client") and code["saved_by"] == "admin"
    assert client.job_code(old["id"], diff=True)["current"] is True
    versions = client.worker_versions("Secretive")
    assert versions[0]["hash"] == code["hash"] and versions[0]["jobs"] >= 1
    assert client.worker_version("Secretive", code["hash"])["source"] == code["source"]
