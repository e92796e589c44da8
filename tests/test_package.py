"""The package: ``handlers/`` and ``static/`` belong to ``jobjoker`` and nothing else lands at
the top of ``sys.path`` or site-packages, whether it runs from a checkout or installed."""
import json
import os

import pytest

from jobjoker import checkout


@pytest.mark.gen_test
async def test_a_job_finds_jobjoker_without_the_checkout_on_its_path(api, run_job,
                                                                      write_worker):
    # The suite runs from a checkout, whose root the supervisor needs only to import jobjoker.
    assert checkout.ROOT is not None
    write_worker("Paths", '''import json, os, sys

from jobjoker import Worker


class Paths(Worker):
    def run(self):
        import jobjoker.states  # a module the supervisor did not preload
        self.log(json.dumps({"path": sys.path, "PYTHONPATH": os.environ.get("PYTHONPATH"),
                             "states": jobjoker.states.__file__}))
''')
    job = await run_job("Paths", wait=True)
    assert job["status"] == "done", job
    log = await api("GET", "/jobs/%s/log" % job["id"])
    seen = next(json.loads(entry["message"]) for entry in log.data
                if entry["message"].startswith("{"))
    assert checkout.ROOT not in [os.path.abspath(entry) for entry in seen["path"]]
    assert seen["PYTHONPATH"] is None
    assert seen["states"] == os.path.join(checkout.ROOT, "jobjoker", "states.py")
