"""WebSocket streams against a real server and real worker processes: every entry exactly once,
in order, across the backlog/live boundary and across reconnects; status and end messages;
authentication and origin checks before the upgrade; slow subscribers dropped, not waited for;
``/events`` for every change."""
import asyncio
import base64
import json
import socket

import pytest

from jobjoker import models
from jobjoker.errors import DatabaseUnavailable
from tests.support import PASSWORD, poll, read_until_closed

FLOOD = '''import os, time
from jobjoker import Worker

class Flood(Worker):
    """Logs `count` lines; after the first `pause_at`, waits for the file `gate` to exist."""
    def run(self):
        count = self.params["count"]
        pause_at = self.params.get("pause_at", count)
        for i in range(count):
            if i == pause_at:
                self.log("pausing")
                while not os.path.exists(self.params["gate"]):
                    time.sleep(0.01)
            self.log("line %d" % i)
            if i % 10000 == 0:
                self.response("response %d" % i)
'''


def entries_of(messages, stream="log"):
    """(first seq, messages) of every entry of ``stream``, checking the seqs are contiguous."""
    entries, expected = [], None
    for message in messages:
        if message["type"] != stream:
            continue
        if expected is not None:
            assert message["seq"] == expected, "gap or duplicate at %d" % expected
        else:
            first = message["seq"]
        entries.extend(e["message"] for e in message["entries"])
        expected = message["seq"] + len(message["entries"])
    return (first if expected is not None else None), entries


async def job_field(api, job_id, field):
    return (await api("GET", "/jobs/%s" % job_id)).data[0][field]


@pytest.mark.gen_test(timeout=60)
async def test_an_ended_job_gives_status_backlog_then_end(api, run_job, ws_connect):
    job = await run_job("Foobar", wait=True)
    connection = await ws_connect("/jobs/%s/stream" % job["id"])
    messages = await read_until_closed(connection)
    assert connection.close_code == 1000
    assert messages[0]["type"] == "status" and messages[0]["job"]["status"] == "done"
    assert messages[-1] == {"type": "end", "status": "done"}
    first, log = entries_of(messages)
    assert first == 0
    assert log[0].startswith("STARTED") and log[1] == "foobar" and log[2].startswith("ENDED")
    assert entries_of(messages, "response") == (0, ["foobar"])
    assert all(isinstance(e["time"], float) for m in messages if m["type"] == "log"
               for e in m["entries"])


@pytest.mark.both_databases  # the backlog read from the store while ingestion commits
@pytest.mark.gen_test(timeout=240)
async def test_from_the_start_and_from_half_way_every_entry_arrives_once_in_order(
        api, ws_connect, write_worker, tmp_path):
    write_worker("Flood", FLOOD)
    gate = tmp_path / "gate"
    created = await api("POST", "/jobs", {"worker": "Flood", "parameters": {
        "count": 200000, "pause_at": 100000, "gate": str(gate)}})
    job_id = created.data[0]["id"]
    early = await ws_connect("/jobs/%s/stream" % job_id)
    early_messages = asyncio.ensure_future(read_until_closed(early, timeout=120))
    assert (await api("PUT", "/jobs/%s/status" % job_id, "start")).code == 200

    async def half_way():
        return await job_field(api, job_id, "log_count") >= 100002  # STARTED, 100k, pausing
    await poll(half_way, what="half the log")
    late = await ws_connect("/jobs/%s/stream" % job_id)
    late_start = [json.loads(await asyncio.wait_for(late.read_message(), 60))]
    while late_start[-1]["type"] != "log":
        late_start.append(json.loads(await asyncio.wait_for(late.read_message(), 60)))
    # The late one has its first page of backlog, not all of it, when the flood resumes.
    assert late_start[-1]["seq"] + len(late_start[-1]["entries"]) < 100002
    gate.write_text("go")
    late_rest = asyncio.ensure_future(read_until_closed(late, timeout=120))
    expected = ["line %d" % i for i in range(200000)]
    for messages in (await early_messages, late_start + await late_rest):
        first, log = entries_of(messages)
        assert first == 0
        assert log[0].startswith("STARTED") and log[-1].startswith("ENDED done")
        assert [m for m in log[1:-1] if m != "pausing"] == expected
        assert entries_of(messages, "response")[1] == ["response %d" % i
                                                       for i in range(0, 200000, 10000)]
        assert messages[-1] == {"type": "end", "status": "done"}
        statuses = [m["job"]["status"] for m in messages if m["type"] == "status"]
        assert statuses[-1] == "done" and "active" in statuses


@pytest.mark.both_databases  # the backlog read from the store while ingestion commits
@pytest.mark.gen_test(timeout=120)
async def test_a_reconnect_with_log_from_continues_without_loss(api, run_job, ws_connect,
                                                                write_worker, tmp_path):
    write_worker("Flood", FLOOD)
    gate = tmp_path / "gate"
    job_id = (await run_job("Flood", {"count": 20000, "pause_at": 5000,
                                      "gate": str(gate)}))["id"]
    first = await ws_connect("/jobs/%s/stream" % job_id)
    received, next_seq = [], 0
    while next_seq < 3000:  # take part of the log, then drop the connection
        message = json.loads(await first.read_message())
        if message["type"] == "log":
            assert message["seq"] == next_seq
            received += [e["message"] for e in message["entries"]]
            next_seq += len(message["entries"])
    first.close()
    gate.write_text("go")
    second = await ws_connect("/jobs/%s/stream?log_from=%d&response_from=1" % (job_id, next_seq))
    messages = await read_until_closed(second)
    start, rest = entries_of(messages)
    assert start == next_seq
    log = received + rest
    assert [m for m in log[1:-1] if m != "pausing"] == ["line %d" % i for i in range(20000)]
    assert entries_of(messages, "response")[0] == 1  # response_from is honoured too


@pytest.mark.gen_test(timeout=60)
async def test_a_stream_without_its_database_is_closed_try_again_later(
        api, run_job, ws_connect, server, monkeypatch):
    # Issue 14: in an outage each subscriber's stream logged a traceback and closed with 1011.
    job = await run_job("Foobar", wait=True)
    read = server.storage.read

    def backlog_without_database(fn, *args, **kwargs):
        if getattr(fn, "__name__", None) == "_read":  # the follower's backlog: not the lookup
            raise DatabaseUnavailable("the database is unavailable (no connection)")
        return read(fn, *args, **kwargs)
    monkeypatch.setattr(server.storage, "read", backlog_without_database)
    connection = await ws_connect("/jobs/%s/stream" % job["id"])
    messages = await read_until_closed(connection)
    assert [m["type"] for m in messages] == ["status"]
    assert (connection.close_code, connection.close_reason) == (
        1013, "the database is unavailable: reconnect shortly")


@pytest.mark.gen_test(timeout=60)
async def test_log_from_inside_a_block_and_beyond_the_end(api, run_job, ws_connect):
    job = await run_job("TestWorker", {"count": 3, "sleep": 0.05}, wait=True)
    total = job["log_count"]
    messages = await read_until_closed(await ws_connect("/jobs/%s/stream?log_from=2" % job["id"]))
    assert entries_of(messages)[0] == 2
    assert len(entries_of(messages)[1]) == total - 2
    beyond = await read_until_closed(await ws_connect("/jobs/%s/stream?log_from=999" % job["id"]))
    assert entries_of(beyond) == (None, []) and beyond[-1]["type"] == "end"


@pytest.mark.gen_test(timeout=60)
async def test_appends_through_the_api_reach_subscribers(api, ws_connect):
    created = await api("POST", "/jobs", {"worker": "Foobar"})
    job_id = created.data[0]["id"]
    connection = await ws_connect("/jobs/%s/stream" % job_id)
    assert json.loads(await connection.read_message())["type"] == "status"
    await api("POST", "/jobs/%s/log" % job_id, "posted\nline")
    await api("POST", "/jobs/%s/response" % job_id, "a response")
    got = [json.loads(await connection.read_message()) for _ in range(2)]
    assert {(m["type"], m["seq"], m["entries"][0]["message"]) for m in got} == {
        ("log", 0, "posted\nline"), ("response", 0, "a response")}
    connection.close()


@pytest.mark.gen_test(timeout=60)
async def test_status_changes_arrive_live_and_deleting_the_job_closes_the_stream(
        api, ws_connect):
    created = await api("POST", "/jobs", {"worker": "TestWorker",
                                          "parameters": {"count": 100, "sleep": 5}})
    job_id = created.data[0]["id"]
    connection = await ws_connect("/jobs/%s/stream" % job_id)
    await api("PUT", "/jobs/%s/status" % job_id, "start")
    await api("PUT", "/jobs/%s/status" % job_id, "stop")
    messages = await read_until_closed(connection)
    statuses = [m["job"]["status"] for m in messages if m["type"] == "status"]
    assert statuses[0] == "idle" and "active" in statuses and statuses[-1] == "stop"
    assert messages[-1] == {"type": "end", "status": "stop"}

    idle = await api("POST", "/jobs", {"worker": "Foobar"})
    follower = await ws_connect("/jobs/%s/stream" % idle.data[0]["id"])
    await follower.read_message()
    await api("DELETE", "/jobs/%s" % idle.data[0]["id"])
    assert await asyncio.wait_for(follower.read_message(), 10) is None
    assert follower.close_code == 1000 and follower.close_reason == "job deleted"


# --- refused before the upgrade -------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/jobs/%s/stream", "/events"])
async def test_bad_credentials_unknown_jobs_and_other_origins_are_refused(
        api, ws_connect, path):
    import tornado.httpclient
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    target = path % job_id if "%s" in path else path
    cases = [({"auth": None}, 401), ({"auth": ("admin", "wrong")}, 401),
             ({"headers": {"Origin": "http://evil.example"}}, 403)]
    if "%s" in path:
        cases += [({"path": path % "no-such-job"}, 404),
                  ({"path": target + "?log_from=-1"}, 400),
                  ({"path": target + "?log_from=x"}, 400)]
    for kwargs, code in cases:
        with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
            await ws_connect(kwargs.pop("path", target), **kwargs)
        assert caught.value.code == code, (kwargs, caught.value)


@pytest.mark.gen_test(timeout=60)
async def test_a_stream_takes_a_short_id_and_refuses_an_ambiguous_one(api, run_job, ws_connect):
    import tornado.httpclient
    job = await run_job("Foobar", wait=True)
    messages = await read_until_closed(await ws_connect("/jobs/%s/stream" % job["id"][-6:]))
    assert messages[0]["type"] == "status" and messages[0]["job"]["id"] == job["id"]
    assert messages[-1] == {"type": "end", "status": "done"}
    for job_id in ("01m8rtezv60hs6abc789", "01m8s44r587ezdabc789"):
        models.Job.create(id=job_id, short_id=job_id[-6:], worker="Foobar", status="done",
                          created=1.0)
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await ws_connect("/jobs/abc789/stream")
    assert caught.value.code == 409


@pytest.mark.gen_test
async def test_the_same_origin_is_accepted(api, ws_connect, http_port):
    connection = await ws_connect("/events", headers={"Origin": "http://127.0.0.1:%d"
                                                      % http_port})
    job_id = (await api("POST", "/jobs", {"worker": "Foobar"})).data[0]["id"]
    event = json.loads(await asyncio.wait_for(connection.read_message(), 60))
    assert (event["type"], event["action"], event["job"]["id"]) == ("job", "created", job_id)
    connection.close()


# --- slow subscribers ------------------------------------------------------------------------

def raw_upgrade(port, path):
    """A WebSocket that completes the handshake and then never reads."""
    sock = socket.socket()
    # A window well under what the flood sends, but not under the loopback MSS (64 KiB), where
    # TCP crawls: the subscriber stalls soon, and reading what it was sent is quick later.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    sock.connect(("127.0.0.1", port))
    credentials = base64.b64encode(("admin:%s" % PASSWORD).encode()).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\nAuthorization: Basic %s\r\n\r\n"
                  % (path, port, credentials)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def close_code_in(data):
    """The code of the close frame among server frames in ``data`` (None if there is none)."""
    pos = 0
    while pos + 2 <= len(data):
        opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(data[pos:pos + 2], "big")
            pos += 2
        elif length == 127:
            length = int.from_bytes(data[pos:pos + 8], "big")
            pos += 8
        if opcode == 0x8:
            return int.from_bytes(data[pos:pos + 2], "big")
        pos += length
    return None


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("config_overrides", [{"stream_buffer_bytes": 256 * 1024,
                                               "stream_stall_timeout": 1.0}])
async def test_a_subscriber_that_never_reads_is_dropped_while_another_keeps_up(
        api, ws_connect, write_worker, server, http_port, tmp_path):
    write_worker("Flood", FLOOD)
    created = await api("POST", "/jobs", {"worker": "Flood", "parameters": {"count": 300000}})
    job_id = created.data[0]["id"]
    subscribers_before = server.hub.subscriber_count()
    loop = asyncio.get_running_loop()  # the raw socket blocks: keep it off the IOLoop
    stuck = await loop.run_in_executor(None, raw_upgrade, http_port, "/jobs/%s/stream" % job_id)
    reader = await ws_connect("/jobs/%s/stream" % job_id)
    reading = asyncio.ensure_future(read_until_closed(reader, timeout=120))
    await api("PUT", "/jobs/%s/status" % job_id, "start")
    messages = await reading
    log = entries_of(messages)[1]
    assert [m for m in log[1:-1]] == ["line %d" % i for i in range(300000)]

    async def both_gone():  # the reader at its end, the stuck one dropped before reading a byte
        return server.hub.subscriber_count() == subscribers_before
    await poll(both_gone, what="the stuck subscriber to be dropped")
    stuck.settimeout(10)
    data = b""
    while True:
        chunk = await loop.run_in_executor(None, stuck.recv, 65536)
        if not chunk:
            break
        data += chunk
    assert close_code_in(data) == 1013
    assert b"too slow" in data
    stuck.close()


# --- /events -------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_events_report_create_start_and_end_of_a_job_and_worker_changes(
        api, ws_connect, run_job):
    connection = await ws_connect("/events")
    job = await run_job("Foobar", wait=True)
    await api("PUT", "/workers/Extra", "from jobjoker import Worker\n\nclass Extra(Worker):\n"
                                       "    def run(self):\n        pass\n")
    await api("DELETE", "/jobs/%s" % job["id"])
    seen = []
    while not seen or seen[-1][:2] != ("job", "deleted"):
        message = json.loads(await asyncio.wait_for(connection.read_message(), 10))
        seen.append((message["type"], message["action"],
                     message.get("job", {}).get("status") or message.get("name")))
    assert seen[0] == ("job", "created", "idle")
    statuses = [s[2] for s in seen if s[:2] == ("job", "status")]
    assert statuses == ["active", "done"]
    assert ("worker", "saved", "Extra") in seen
    connection.close()


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("config_overrides", [{"stream_buffer_bytes": 64 * 1024}])
async def test_a_prompt_reader_is_never_dropped_even_with_a_small_buffer(api, ws_connect,
                                                                         write_worker):
    write_worker("Flood", FLOOD)
    created = await api("POST", "/jobs", {"worker": "Flood", "parameters": {"count": 50000}})
    job_id = created.data[0]["id"]
    reader = await ws_connect("/jobs/%s/stream" % job_id)
    reading = asyncio.ensure_future(read_until_closed(reader, timeout=120))
    await api("PUT", "/jobs/%s/status" % job_id, "start")
    messages = await reading
    assert reader.close_code == 1000, (reader.close_code, reader.close_reason)
    assert entries_of(messages)[1][1:-1] == ["line %d" % i for i in range(50000)]


@pytest.mark.gen_test(timeout=120)
async def test_huge_entries_come_in_messages_a_client_accepts(api, ws_connect):
    """A 3 MiB entry is stored as consecutive entries of at most 64 KiB, and a backlog page
    stays far below what a client accepts in one message."""
    created = await api("POST", "/jobs", {"worker": "Foobar"})
    job_id = created.data[0]["id"]
    texts = ["%d" % i + "é\\x" * (1024 * 1024) for i in range(3)]
    for text in texts:
        await api("POST", "/jobs/%s/log" % job_id, text)
    total = (await api("GET", "/jobs/%s" % job_id)).data[0]["log_count"]
    assert total > 3 * 3 * 1024 * 1024 // (64 * 1024)
    connection = await ws_connect("/jobs/%s/stream" % job_id)
    sizes, seqs, messages = [], [], []
    while len(seqs) < total:
        raw = await asyncio.wait_for(connection.read_message(), 30)
        message = json.loads(raw)
        if message["type"] == "log":
            sizes.append(len(raw))
            seqs += [message["seq"] + k for k in range(len(message["entries"]))]
            messages += [e["message"] for e in message["entries"]]
    assert seqs == list(range(total))
    assert max(sizes) < 2 * 1024 * 1024  # ~1 MiB of messages, JSON-escaped
    assert max(len(m.encode()) for m in messages) <= 64 * 1024
    assert "".join(messages) == "".join(texts)  # cut only between characters and escapes
    connection.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_stopping_server_says_going_away(api, ws_connect, server):
    connection = await ws_connect("/events")
    await server.stop()
    assert await asyncio.wait_for(connection.read_message(), 10) is None
    assert connection.close_code == 1001
