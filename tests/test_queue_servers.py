"""Caps and the queue across servers: two real server processes (nodes ``east`` and ``west``) on
one database share the cap stored in it (given to one of them), and a burst of starts sent to
both never runs more jobs at once than the cap, proven from the start and end times the jobs'
processes wrote; each job runs once, on whichever server admitted it."""
import concurrent.futures

import pytest

from tests.support import workers_folder
from tests.test_queue import STAMP, most_at_once


@pytest.mark.both_databases
def test_two_servers_share_one_cap(servers, tmp_path, database_url):
    workers = workers_folder(tmp_path / "workers", {"Stamp": STAMP}, samples=())
    stamps = tmp_path / "stamps.txt"

    def start(name, *args):
        root = tmp_path / name
        root.mkdir()
        return servers("--database", database_url, "--node", name, *args, root=root,
                       workers_dir=workers).wait_ready()
    east = start("east", "--max-active-jobs", "2")
    west = start("west")  # no option: the cap stored by east holds here too
    jobs = []
    for server in (east, west):
        reply = server.call("POST", "/jobs/batch", {"jobs": [
            {"worker": "Stamp", "parameters": {"file": str(stamps), "name": "j", "sleep": 0.1}}
            for _ in range(15)]})
        assert reply.code == 201, reply
        jobs += [(server, job["id"]) for job in reply.data]

    def start_job(entry):
        server, job_id = entry
        return server.call("PUT", "/jobs/%s/status" % job_id, "start").code
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(start_job, jobs))
    assert set(codes) <= {200, 202} and 202 in codes
    for server, job_id in jobs:
        assert server.wait_for_job(job_id, timeout=120)["status"] == "done"
    lines = stamps.read_text().splitlines()
    assert len(lines) == 2 * len(jobs)  # each ran once
    assert most_at_once(lines) <= 2
