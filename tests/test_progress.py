"""A worker's progress (``self.progress()``) through a real server and real job processes: the job
row, the job's stream and ``/events``, coalesced (a worker reporting 10,000 times yields a
bounded number of events, the last one the final value), bad values turned into warning entries,
malformed control records skipped with a warning; and the spool format that carries them."""
import json
import math

import pytest

from jobjoker import controls, spool
from tests.support import poll, read_until_closed

STEPS = '''import os, time
from jobjoker import Worker

class Steps(Worker):
    """Reports progress `count` times, then waits for the file `gate` (if given)."""
    def run(self):
        count = self.params["count"]
        for i in range(1, count + 1):
            self.progress(i, count, "step %d" % i)
        gate = self.params.get("gate")
        while gate and not os.path.exists(gate):
            time.sleep(0.01)
        self.log("finished")
'''

BAD = '''from jobjoker import Worker

class Bad(Worker):
    def run(self):
        for done, total in [(1.5, None), (-0.1, None), ("half", None), (True, None),
                            (float("nan"), None), (1, 0), (3, 2), (None, None)]:
            self.progress(done, total)
        self.progress(0.25, message="quarter")
        self.log("still running")
'''

FORGED = '''import os, sys
from jobjoker import Worker, spool

class Forged(Worker):
    """Writes control records of its own to its stdout (the log spool), bypassing the API."""
    def run(self):
        for record in [b"not json", b'{"type": "progress", "progress": 7}',
                       b'{"type": "mystery"}', b'{"type": "progress", "progress": 0.5}']:
            os.write(1, spool.frame_control(record))
        self.log("after")
        os.system("true")  # a child starts: the runner writes its buffered entries first
        os.write(1, spool.CONTROL_MARK + b"99999999\\n")  # over any cap: skipped unread
'''


def entries(api_reply):
    return [entry["message"] for entry in api_reply.data]


async def job_log(api, job_id):
    return entries(await api("GET", "/jobs/%s/log?limit=1000" % job_id))


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=90)
async def test_progress_reaches_the_job_the_stream_and_events_coalesced(
        api, run_job, write_worker, ws_connect, tmp_path):
    write_worker("Steps", STEPS)
    events = await ws_connect("/events")
    gate = tmp_path / "gate"
    job = await run_job("Steps", {"count": 10000, "gate": str(gate)})
    stream = await ws_connect("/jobs/%s/stream" % job["id"])

    async def final_progress():
        got = (await api("GET", "/jobs/%s" % job["id"])).data[0]
        return got if got["progress"] == 1.0 else None
    got = await poll(final_progress, 60, "the job's progress to reach 1")
    assert got["progress_message"] == "step 10000"
    gate.write_text("go")
    messages = await read_until_closed(stream)
    progress = [m for m in messages if m["type"] == "progress"]
    assert progress, messages
    assert len(progress) <= 200  # 10,000 calls: coalesced
    # The last value is never lost: the last progress message, or else the status copy sent
    # after it, says 1 (a copy carries the progress too).
    last_copy = [m for m in messages if m["type"] in ("progress", "status")][-1]
    assert (last_copy.get("progress") if last_copy["type"] == "progress"
            else last_copy["job"]["progress"]) == 1.0
    assert progress[-1]["job"] == job["id"] and progress[-1]["message"] is not None
    assert set(progress[-1]) == {"type", "job", "progress", "message", "revision"}
    revisions = [m["revision"] if m["type"] == "progress" else m["job"]["revision"]
                 for m in messages if m["type"] in ("progress", "status")]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    assert 0 < progress[0]["progress"] <= 1

    seen = []
    while True:
        message = json.loads(await events.read_message())
        if message["type"] == "progress" and message["job"] == job["id"]:
            seen.append(message)
        if message["type"] == "job" and message["job"]["id"] == job["id"] \
                and message["job"]["status"] == "done":
            assert message["job"]["progress"] == 1.0
            break
    assert seen and len(seen) <= 200
    assert seen[-1]["message"] == "step %d" % round(seen[-1]["progress"] * 10000)
    assert seen[-1]["progress"] == 1.0 or seen[-1]["revision"] < message["job"]["revision"]
    events.close()


@pytest.mark.gen_test(timeout=90)
async def test_bad_progress_values_are_warning_entries_and_the_job_goes_on(
        api, run_job, write_worker):
    write_worker("Bad", BAD)
    job = await run_job("Bad", wait=True)
    assert job["status"] == "done"
    assert job["progress"] == 0.25 and job["progress_message"] == "quarter"
    log = await job_log(api, job["id"])
    warnings = [line for line in log if line.startswith("WARNING: progress ignored: ")]
    assert len(warnings) == 8, log
    assert any("from 0 to 1" in w for w in warnings)
    assert any("must be a number, not 'half'" in w for w in warnings)
    assert any("not True" in w for w in warnings)
    assert any("finite" in w for w in warnings)
    assert any("total must be more than 0" in w for w in warnings)
    assert "still running" in log


@pytest.mark.gen_test(timeout=90)
async def test_forged_control_records_are_skipped_with_a_warning(api, run_job, write_worker):
    write_worker("Forged", FORGED)
    job = await run_job("Forged", wait=True)
    assert job["status"] == "done"
    assert job["progress"] == 0.5  # the one good record
    log = await job_log(api, job["id"])
    skipped = [line for line in log if line.startswith("[JobJoker] WARNING: ")]
    assert len(skipped) == 4, log
    assert "not JSON" in skipped[0] and "progress ignored" in skipped[1]
    assert "unknown kind" in skipped[2] and "over the cap" in skipped[3]
    assert "after" in log


@pytest.mark.gen_test(timeout=60)
async def test_a_job_that_reports_no_progress_has_none(api, run_job):
    job = await run_job("Foobar", wait=True)
    assert job["progress"] is None and job["progress_message"] is None


def test_progress_values_are_checked():
    assert controls.check_progress(0.5) == 0.5
    assert controls.check_progress(3, 4) == 0.75
    assert controls.check_progress(0, 10) == 0.0
    for done, total in [(1.01, None), (-1, None), (True, None), (math.inf, None), (1, -2),
                        (5, 4), ("1", None), (None, None), (1, False)]:
        with pytest.raises(ValueError):
            controls.check_progress(done, total)
    assert len(controls.cut_message("x" * 10000)) == controls.MAX_MESSAGE_CHARS


def test_control_records_travel_in_the_log_spool_apart_from_entries():
    record = spool.frame_control(b'{"type":"progress","progress":0.5,"message":null}')
    data = (spool.frame_block(spool.encode_entry("one", 1.0)) + b"raw line\n" + record
            + spool.frame_block(spool.encode_entry("two", 2.0)))
    found = []
    consumed, block = spool.parse_log_spool(data, when=3.0, controls=found)
    assert consumed == len(data)
    assert [e["message"] for e in spool.decode_entries(block)] == ["one", "raw line", "two"]
    assert found == [(len(record) - len(b"\x1e\x1fJC49\n"), record.split(b"\n", 1)[1])]
    # Cut in the middle of a record: it waits for the rest.
    found = []
    consumed, _ = spool.parse_log_spool(data[:len(data) - 40], controls=found)
    assert found == [] or consumed > data.index(record)
    # A record announced longer than the limit is skipped whole, even unwritten.
    huge = spool.CONTROL_MARK + b"5000\n" + b"x" * 10
    found = []
    consumed, block = spool.parse_log_spool(huge, controls=found, control_limit=100)
    assert found == [(5000, None)] and consumed == len(spool.CONTROL_MARK) + 5 + 5000


# --- the command line: run --follow and logs -f off a terminal -----------------------------------

def test_follow_off_a_terminal_prints_progress_as_plain_lines_on_stderr(servers, tmp_path):
    import os
    import subprocess
    import sys
    from tests.support import PASSWORD, ROOT, workers_folder
    workers = workers_folder(tmp_path / "cli-workers", {"Steps": STEPS})
    server = servers("--stop-grace", "2", workers_dir=workers).wait_ready()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    env.update(JOBJOKER_URL=server.url, JOBJOKER_USER="admin", JOBJOKER_PASSWORD=PASSWORD)
    followed = subprocess.run(
        [sys.executable, "-m", "jobjoker.cli", "run", "Steps", "-p", "count=50", "--follow"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert followed.returncode == 0, followed.stderr
    lines = [line for line in followed.stderr.splitlines()
             if not line.startswith("jobjoker: warning: ")]  # Steps declares no parameters
    assert lines and all(line.startswith("progress ") for line in lines), lines
    assert lines[-1] == "progress 100% step 50"
    assert "\x1b" not in followed.stderr and "\r" not in followed.stderr
    assert "finished" in followed.stdout and "progress" not in followed.stdout
    job_id = server.api("GET", "/jobs")[0]["id"]
    logs = subprocess.run([sys.executable, "-m", "jobjoker.cli", "logs", "-f", job_id],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert logs.returncode == 0 and logs.stderr.splitlines() == ["progress 100% step 50"]

    from jobjoker.client import Client
    client = Client(server.url, "admin", PASSWORD)
    job = client.create_job("Steps", {"count": 30}, start=True)
    events = list(client.follow(job["id"], progress=True))
    progress = [event for event in events if event.kind == "progress"]
    final = [event for event in events if event.kind == "status"][-1].job
    assert final["progress"] == 1.0 and final["progress_message"] == "step 30"
    assert all(0 < event.progress <= 1 for event in progress)
    assert progress == [] or progress[-1].to_dict()["kind"] == "progress"
    assert not any(event.kind == "progress" for event in client.follow(job["id"]))


# --- the pieces: the runner's coalescing, the hub's ---------------------------------------------

class _Flusher:
    woken = 0

    def wake(self):
        self.woken += 1


def test_the_runner_writes_few_progress_records_and_never_loses_the_last(monkeypatch):
    import errno
    import json as json_module
    from jobjoker import runner
    from jobjoker.control_writer import ControlWriter
    from jobjoker.parameters import Masker
    written = []
    full = {"on": False}

    def write(fd, view):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(bytes(view))
        return len(view)
    monkeypatch.setattr(runner.os, "write", write)
    monkeypatch.setattr(runner, "_room_for", lambda fd, length: not full["on"])
    flusher = _Flusher()
    log = runner.BlockWriter(99, flusher, headed=True)
    control = ControlWriter(log, flusher, Masker(["s3cret-word"]), 1000, log.write)
    for i in range(1, 10001):
        control.progress(i / 10000, "item %d with s3cret-word" % i)
    assert control.due is not None and flusher.woken  # the last one is held, the flusher told
    full["on"] = True
    control.close()  # the disk refuses: kept, not lost
    full["on"] = False
    control.close()
    found = []
    consumed, _ = spool.parse_log_spool(b"".join(written), controls=found)
    records = [json_module.loads(payload) for _, payload in found]
    assert 2 <= len(records) <= 200  # 10,000 calls; a record at most every 0.1 s
    assert records[-1] == {"type": "progress", "progress": 1.0,
                           "message": "item 10000 with ********"}
    control.result('"%s"' % ("x" * 2000))  # over its cap of 1000 bytes: refused, in the log
    log.flush()
    _, block = spool.parse_log_spool(b"".join(written))
    assert spool.decode_entries(block)[-1]["message"] == (
        "result refused: 2002 bytes, over the cap of 1000 (--max-result-bytes)")


def test_the_hub_coalesces_progress_per_job_and_sends_the_last_before_a_change():
    import asyncio
    from jobjoker.events import CHANGES, EventHub

    async def scenario():
        hub = EventHub(progress_interval=0.05)
        got = []
        hub.subscribe(got.append, topic=CHANGES)
        for i in range(1, 1001):
            hub.publish({"type": "progress", "job": "a", "progress": i / 1000, "message": None,
                         "revision": i})
        hub.publish({"type": "progress", "job": "b", "progress": 0.5, "message": None,
                     "revision": 1})
        assert [e["job"] for e in got] == ["a", "b"]  # the first of each at once
        hub.publish({"type": "job", "action": "status",
                     "job": {"id": "a", "status": "done", "revision": 1001}})
        # The held one went out first, then the change.
        assert [e.get("revision", e.get("job", {})) for e in got[2:3]] == [1000]
        assert got[3]["type"] == "job"
        for i in range(1, 1001):
            hub.publish({"type": "progress", "job": "b", "progress": i / 1000,
                         "message": "m", "revision": 1 + i})
        while got[-1].get("revision") != 1001 or got[-1]["job"] != "b":
            await asyncio.sleep(0.01)  # the trailing send, on the loop's timer
        assert len([e for e in got if e.get("job") == "b"]) <= 3
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_on_a_terminal_the_bar_is_one_line_redrawn_around_log_lines():
    import io
    from jobjoker.cli_progress import ProgressDisplay, eta

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    terminal = Terminal()
    display = ProgressDisplay(terminal)
    display.status({"starttime": 1000.0, "progress": None})
    display.show(0.5, "half way")
    assert terminal.getvalue().startswith("\r\x1b[K[##########----------]  50% left ")
    assert terminal.getvalue().endswith(" half way") and "\n" not in terminal.getvalue()
    display.clear()
    assert terminal.getvalue().endswith("\r\x1b[K")  # a log line may now be printed
    display.redraw()
    assert terminal.getvalue().endswith(" half way")
    display.close()
    assert terminal.getvalue().endswith("\n")
    assert eta(1000.0, 0.25, now=1060.0) == "3:00"
    assert eta(1000.0, 0.5, now=1000.0 + 2 * 3600) == "2:00:00"
    assert eta(None, 0.5) == eta(1000.0, 0) == eta(1000.0, 1.0) == "—"
