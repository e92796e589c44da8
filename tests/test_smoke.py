import pytest


@pytest.mark.gen_test
async def test_run_foobar(api, run_job):
    job = await run_job("Foobar", wait=True)
    assert job["status"] == "done", job
    log = await api("GET", "/jobs/%s/log" % job["id"])
    assert [e["message"] for e in log.data][1] == "foobar"
