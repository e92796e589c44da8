"""``/metrics`` (jobjoker/metrics.py, handlers/metrics.py) read by Prometheus's own parser, and
``/health`` as strangers and the signed-in see it (handlers/health.py)."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobjoker import metrics as metrics_module
from jobjoker.errors import Unavailable
from jobjoker.supervisor_client import HASH_CHARS
from tests.support import bearer, poll


def samples(text):
    """``{(name, frozenset(labels.items())): value}`` of an exposition, as Prometheus reads
    it."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(api, **kwargs):
    reply = await api("GET", "/metrics", **kwargs)
    assert reply.code == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(reply.body.decode())


def value(figures, name, **labels):
    """The one sample of ``name`` whose labels include ``labels`` (the supervisor's also name
    its code hash, which a test does not know)."""
    wanted = frozenset(labels.items())
    found = [v for (n, have), v in figures.items() if n == name and wanted <= have]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=120)
async def test_metrics_parse_and_move_when_a_job_runs(api, run_job, server, monkeypatch):
    monkeypatch.setattr(metrics_module, "JOBS_CACHE_SECONDS", 0)  # read the counts each time
    before = await scrape(api)
    assert value(before, "jobjoker_database_up") == 1
    supervisor = server.processes.supervisor
    current = {"role": "current", "code": supervisor.supervisor_code_hash[:HASH_CHARS]}
    assert value(before, "jobjoker_supervisor_up", **current) == 1
    assert value(before, "jobjoker_supervisor_pid", **current) == supervisor.supervisor_pid
    assert value(before, "jobjoker_loop_lag_seconds_count") > 0  # the loop ticks
    job = await run_job("TestWorker", {"count": 3}, wait=True)
    assert job["status"] == "done", job

    async def counted():
        # A job's end is announced once its entries are stored: wait for both figures.
        figures = await scrape(api)
        return (value(figures, "jobjoker_job_ends_total", outcome="done")
                > value(before, "jobjoker_job_ends_total", outcome="done")) and figures
    after = await poll(counted, what="the job's end in /metrics")
    assert value(after, "jobjoker_job_starts_total") == \
        value(before, "jobjoker_job_starts_total") + 1
    assert value(after, "jobjoker_job_ends_total", outcome="done") == \
        value(before, "jobjoker_job_ends_total", outcome="done") + 1
    assert value(after, "jobjoker_job_ends_total", outcome="error") == \
        value(before, "jobjoker_job_ends_total", outcome="error")
    assert value(after, "jobjoker_jobs", status="done") == \
        value(before, "jobjoker_jobs", status="done") + 1
    assert value(after, "jobjoker_entries_stored_total", stream="log") >= \
        value(before, "jobjoker_entries_stored_total", stream="log") + 3
    assert value(after, "jobjoker_entries_stored_total", stream="response") >= \
        value(before, "jobjoker_entries_stored_total", stream="response") + 3


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_database_work_is_timed_for_reads_and_writes(api):
    # The queue wait is what a request feels beyond its statements; both grow with requests.
    names = ("jobjoker_database_queue_seconds", "jobjoker_database_work_seconds")
    before = await scrape(api)
    assert (await api("GET", "/jobs")).code == 200  # reads
    assert (await api("POST", "/jobs", {"worker": "TestWorker"})).code == 201  # a write
    after = await scrape(api)
    for name in names:
        for pool in ("read", "write"):
            count = value(after, name + "_count", pool=pool)
            assert count > value(before, name + "_count", pool=pool), (name, pool)
            assert value(after, name + "_bucket", pool=pool, le="+Inf") == count
            assert value(after, name + "_bucket", pool=pool, le="0.0001") <= count
            assert value(after, name + "_sum", pool=pool) >= 0


@pytest.mark.gen_test(timeout=60)
async def test_jobs_by_status_are_read_at_most_once_per_cache_period(api, server,
                                                                     monkeypatch):
    reads = []
    original = server.storage.read

    def counting(fn, *args, **kwargs):
        if fn.__name__ == "count_by_status":
            reads.append(fn)
        return original(fn, *args, **kwargs)
    monkeypatch.setattr(server.storage, "read", counting)
    monkeypatch.setattr(metrics_module, "JOBS_CACHE_SECONDS", 3600)
    for _ in range(3):
        await scrape(api)
    assert len(reads) <= 1


@pytest.mark.gen_test(timeout=60)
async def test_metrics_need_a_viewer_and_a_viewers_token_will_do(api, make_user):
    assert (await api("GET", "/metrics", auth=None)).code == 401
    assert (await api("GET", "/metrics", auth=("admin", "wrong"))).code == 401
    assert (await api("GET", "/metrics", auth=None, headers=bearer("jj_nope"))).code == 401
    viewer = make_user("prometheus-owner", "viewer")
    token = (await api("POST", "/tokens", {"name": "prometheus"}, auth=viewer)).data[0]
    figures = await scrape(api, auth=None, headers=bearer(token["token"]))
    assert ("jobjoker_jobs", frozenset({("status", "active")})) in figures


@pytest.mark.gen_test(timeout=60)
async def test_stream_subscribers_are_counted(api, ws_connect, server):
    assert value(await scrape(api), "jobjoker_stream_subscribers") == 0
    connection = await ws_connect("/events")
    try:
        assert value(await scrape(api), "jobjoker_stream_subscribers") == 1
    finally:
        connection.close()

    async def gone():
        return value(await scrape(api), "jobjoker_stream_subscribers") == 0
    await poll(gone, what="the subscriber to be gone")


@pytest.mark.gen_test(timeout=60)
async def test_a_database_that_does_not_answer_shows_as_down_not_as_a_failed_scrape(
        api, server, monkeypatch):
    async def no_answer(limit=None):
        raise Unavailable("the database has not answered for 2 s")
    monkeypatch.setattr(server.storage, "ping", no_answer)
    reply = await api("GET", "/metrics")
    assert reply.code == 200, reply
    figures = samples(reply.body.decode())
    assert value(figures, "jobjoker_database_up") == 0
    assert not any(name == "jobjoker_jobs" for name, _ in figures)


def test_two_servers_in_one_process_count_apart():
    first, second = metrics_module.Metrics(), metrics_module.Metrics()
    first.count_event({"type": "job", "action": "status", "job": {"status": "active"}})
    first.count_event({"type": "entries", "stream": "log", "count": 5, "job_id": "x"})
    assert first.registry.get_sample_value("jobjoker_job_starts_total") == 1
    assert second.registry.get_sample_value("jobjoker_job_starts_total") == 0
    assert first.registry.get_sample_value("jobjoker_entries_stored_total",
                                           {"stream": "log"}) == 5


@pytest.mark.gen_test(timeout=60)
async def test_head_health_answers_like_get_without_a_body(api):
    get = await api("GET", "/health", auth=None)
    head = await api("HEAD", "/health", auth=None)
    assert head.code == get.code == 200
    assert head.body == b""
    assert int(head.headers["Content-Length"]) == len(get.body)


@pytest.mark.gen_test(timeout=60)
async def test_health_tells_strangers_only_up_or_down(api, app, monkeypatch):
    anonymous = await api("GET", "/health", auth=None)
    assert anonymous.data == [{"status": "ok"}]
    signed_in = (await api("GET", "/health")).data[0]
    assert {"version", "node", "running_jobs", "loop_lag_ms", "supervisors"} <= set(signed_in)
    assert signed_in["supervisors"][0]["connected"] is True
    # Wrong credentials are refused, as anywhere.
    assert (await api("GET", "/health", auth=("admin", "wrong"))).code == 401

    async def down():
        raise Unavailable("the disk is full since yesterday: secret detail")
    monkeypatch.setitem(app.settings, "health", down)
    hidden = await api("GET", "/health", auth=None)
    assert hidden.code == 503 and "disk" not in hidden.json["message"]
    assert (await api("HEAD", "/health", auth=None)).code == 503
    told = await api("GET", "/health")
    assert told.code == 503 and "the disk is full" in told.json["message"]
