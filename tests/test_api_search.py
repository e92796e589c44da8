"""``GET /jobs/ID/log?search=TEXT``: a plain substring found across the whole log, literally and
alike on every database (``%``, ``_`` and ``\\`` are no wildcards or escapes), in any case on
request, in bounded steps that say where to search on. The continuation is made deterministic by
a search time of 0 (one step per request) and steps of one entry, not by timing."""
import urllib.parse

import pytest

from jobjoker import logsearch
from jobjoker.logsearch import MAX_SEARCH_CHARS

MESSAGES = [
    "STARTED by hand",  # 0
    "100% done",  # 1
    "1000 done",  # 2
    "a_b",  # 3
    "aXb",  # 4
    "C:\\temp\\new",  # 5: backslashes, and \n that is not a newline
    "two\nlines",  # 6: a real newline
    "Straße",  # 7
    "STRASSE",  # 8
    "it's 'quoted' and \"double\"",  # 9
    "tab\there",  # 10
]


async def new_job_with_log(api, messages):
    created = await api("POST", "/jobs", {"worker": "Foobar"})
    assert created.code == 201, created
    job_id = created.data[0]["id"]
    for message in messages:
        assert (await api("POST", "/jobs/%s/log" % job_id, message)).code == 201
    return job_id


async def search(api, job_id, text, **query):
    query = "&".join("%s=%s" % item for item in query.items())
    reply = await api("GET", "/jobs/%s/log?search=%s%s" % (
        job_id, urllib.parse.quote(text, safe=""), "&" + query if query else ""))
    assert reply.code == 200, reply
    return reply


async def search_all(api, job_id, text, **query):
    """Every match, following ``X-Next-Offset`` (a busy machine may need several requests)."""
    found, offset = [], 0
    while offset is not None:
        reply = await search(api, job_id, text, offset=offset, **query)
        found += reply.data
        following = reply.headers.get("X-Next-Offset")
        offset = None if following is None else int(following)
    return found


def seqs(reply):
    return [entry["seq"] for entry in reply.data]


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_search_matches_a_plain_substring_literally(api):
    job_id = await new_job_with_log(api, MESSAGES)
    expected = {
        "%": [1], "100%": [1], "0%": [1], "_": [3], "a_b": [3], "\\": [5], "\\n": [5],
        "\n": [6], "two\nl": [6], "done": [1, 2], "ß": [7], "'quoted'": [9], '"': [9],
        "\t": [10], "nothing like it": [], "%%": [], "a%b": [], "a\\_b": [],
    }
    for text, found in expected.items():
        reply = await search(api, job_id, text)
        assert seqs(reply) == found, text
        assert all(text in entry["message"] for entry in reply.data), text
        assert reply.headers["X-Total-Count"] == str(len(MESSAGES))
        assert "X-Next-Offset" not in reply.headers
        assert reply.json["message"] == "%d matches; the search reached the end (%d entries)" % (
            len(found), len(MESSAGES))


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_ignore_case_folds_case_the_same_on_every_database(api):
    job_id = await new_job_with_log(api, MESSAGES)
    assert seqs(await search(api, job_id, "strasse")) == []
    assert seqs(await search(api, job_id, "strasse", ignore_case=1)) == [7, 8]
    assert seqs(await search(api, job_id, "STRAßE", ignore_case="true")) == [7, 8]
    assert seqs(await search(api, job_id, "started", ignore_case="0")) == []
    assert seqs(await search(api, job_id, "started", ignore_case="yes")) == [0]
    assert seqs(await search(api, job_id, "c:\\TEMP\\N", ignore_case=1)) == [5]


@pytest.mark.parametrize("config_overrides", [{"search_seconds": 0}])
@pytest.mark.gen_test(timeout=60)
async def test_a_search_past_its_time_says_where_to_search_on(api, monkeypatch):
    monkeypatch.setattr(logsearch, "STEP_BYTES", 1)  # one entry a step, one step a request
    job_id = await new_job_with_log(api, ["entry %d%s" % (i, " hit" if i % 3 == 0 else "")
                                          for i in range(10)])
    found, offset, requests = [], 0, 0
    while offset is not None:
        reply = await search(api, job_id, "hit", offset=offset)
        requests += 1
        found += seqs(reply)
        assert reply.headers["X-Total-Count"] == "10"
        following = reply.headers.get("X-Next-Offset")
        if following is not None:
            assert int(following) == offset + 1, "each request scanned one step"
            assert "search on with offset=%s" % following in reply.json["message"]
        offset = None if following is None else int(following)
    assert found == [0, 3, 6, 9]
    assert requests == 10


@pytest.mark.both_databases
@pytest.mark.gen_test(timeout=60)
async def test_a_search_stops_at_its_limit_and_goes_on_from_the_entry_after(api):
    job_id = await new_job_with_log(api, ["x %d" % i for i in range(8)])
    reply = await search(api, job_id, "x", limit=3)
    assert seqs(reply) == [0, 1, 2] and reply.headers["X-Next-Offset"] == "3"
    reply = await search(api, job_id, "x", offset=3, limit=3)
    assert seqs(reply) == [3, 4, 5] and reply.headers["X-Next-Offset"] == "6"
    reply = await search(api, job_id, "x", offset=6, limit=3)
    assert seqs(reply) == [6, 7] and "X-Next-Offset" not in reply.headers
    assert seqs(await search(api, job_id, "x", offset=100)) == []


@pytest.mark.gen_test(timeout=60)
async def test_a_search_across_a_job_log_of_big_chunks(api, run_job, write_worker):
    write_worker("Chatty", '''from jobjoker import Worker

class Chatty(Worker):
    """Logs many entries, a few of which say NEEDLE."""
    def run(self):
        for i in range(60000):
            self.log("line %d%s" % (i, " NEEDLE" if i % 20000 == 7 else ""))
''')
    job = await run_job("Chatty", wait=True)
    assert job["status"] == "done", job
    found = await search_all(api, job["id"], "needle", ignore_case=1)
    assert [(e["seq"], e["message"]) for e in found] == [  # seq 0 is STARTED
        (8, "line 7 NEEDLE"), (20008, "line 20007 NEEDLE"), (40008, "line 40007 NEEDLE")]
    text = await api("GET", "/jobs/%s/log?search=0007%%20N&format=text&offset=20000" % job["id"])
    assert text.text.startswith("line 20007 NEEDLE\n")


@pytest.mark.gen_test(timeout=60)
async def test_bad_searches_say_what_to_fix(api):
    job_id = await new_job_with_log(api, ["one"])
    for query in ("search=one&ignore_case=maybe", "ignore_case=null"):
        reply = await api("GET", "/jobs/%s/log?%s" % (job_id, query))
        assert reply.code == 400 and "ignore_case must be 1 or 0" in reply.json["message"]
    reply = await api("GET", "/jobs/%s/log?search=%s" % (job_id, "x" * (MAX_SEARCH_CHARS + 1)))
    assert reply.code == 400
    assert "at most %d characters" % MAX_SEARCH_CHARS in reply.json["message"]
    assert (await search(api, job_id, "x" * MAX_SEARCH_CHARS)).data == []
    reply = await api("GET", "/jobs/%s/log?search=one&limit=-1" % job_id)
    assert reply.code == 400 and "negative" in reply.json["message"]
    assert (await api("GET", "/jobs/nope/log?search=one")).code == 404
    # An empty search is no search, as every empty query option is: the whole page.
    reply = await api("GET", "/jobs/%s/log?search=" % job_id)
    assert reply.code == 200 and [e["message"] for e in reply.data] == ["one"]
