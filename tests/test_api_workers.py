"""The ``/workers`` REST resource: list, read, save and delete worker code.

What is checked, against a real server, a real supervisor and each database backend:

- reading: the list (name, description from the class docstring, size, modified, hash), one
  worker, its code as plain text, 404 for an absent worker;
- saving: 201 when created, 200 when replaced, the hash and description following the content,
  the code checked statically before it is saved (syntax error -> 422 with the line, missing
  class, class not subclassing Worker, no ``run``, class only inside a function, empty body),
  non-UTF-8 -> 400, over ``max_worker_size`` -> 413 (declared or chunked);
- deleting: 200 then 404, 409 while one of the worker's jobs is active;
- names: checked after URL decoding, so no traversal reaches the disk through any method;
- authentication: 401 on every route without valid credentials;
- the round trip: a worker saved through the API runs as a job.

Every refused request must lose nothing and write nothing: tests compare the workers folder on
disk (every file, hidden temp files included) before and after.
"""
import hashlib
import os
import shutil
import textwrap

import pytest

from conftest import PASSWORD
from jobjoker import worker_settings

# The worker limit is larger than the generic body limit, so a save that passes between the two
# proves PUT /workers/Name applies max_worker_size rather than max_body_size.
MAX_WORKER_SIZE = 4096
MAX_BODY_SIZE = 1024


@pytest.fixture
def config_overrides():
    """Small limits for this module (overrides the conftest fixture)."""
    return {"max_worker_size": MAX_WORKER_SIZE, "max_body_size": MAX_BODY_SIZE}


# --- helpers ---------------------------------------------------------------------------------


def worker_code(name, docstring="A worker made by the tests.", message=None):
    """Valid source of worker ``name`` whose run() logs ``message`` (default: its name)."""
    return textwrap.dedent('''\
        from jobjoker import Worker


        class {name}(Worker):
            """{docstring}"""

            def run(self):
                self.log({message!r})
        ''').format(name=name, docstring=docstring, message=message or name)


def padded_to(code, size):
    """``code`` with a trailing comment making it exactly ``size`` bytes long."""
    missing = size - len(code.encode()) - len("#\n")
    assert missing >= 0
    return code + "#" + "x" * missing + "\n"


def snapshot(folder):
    """Every file under ``folder`` (hidden ones too) with its content, by relative path."""
    files = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if os.path.isdir(path):
                files[relative + "/"] = None
            else:
                with open(path, "rb") as f:
                    files[relative] = f.read()
    return files


def sha256(data):
    """The hash the API gives for a file holding ``data``."""
    if isinstance(data, str):
        data = data.encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_envelope(reply, status, success):
    """``reply`` is a JSON envelope with this status; returns its data."""
    assert reply.code == status, reply
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    assert reply.json is not None, reply
    assert set(reply.json) == {"success", "message", "total", "data"}, reply
    assert reply.json["success"] is success, reply
    assert isinstance(reply.json["message"], str), reply
    assert isinstance(reply.data, list), reply
    assert reply.json["total"] == len(reply.data), reply
    return reply.data


def assert_error(reply, status, *words):
    """``reply`` is an error envelope with this status whose message has every one of ``words``
    (case-insensitive); returns its data."""
    data = assert_envelope(reply, status, False)
    message = reply.json["message"].lower()
    assert message, reply
    for word in words:
        assert word.lower() in message, (word, reply)
    return data


def assert_summary(summary, name, code):
    """``summary`` describes worker ``name`` whose file holds ``code``."""
    code = code.encode() if isinstance(code, str) else code
    assert set(summary) == {"name", "description", "error", "parameters", "size", "modified", "hash",
                            *worker_settings.SETTINGS}, summary
    assert summary["name"] == name
    assert summary["size"] == len(code)
    assert summary["hash"] == sha256(code)
    assert isinstance(summary["modified"], float)


SAMPLE_NAMES = ["Foobar", "TestWorker"]


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_list_gives_every_worker_with_its_summary(api, workers_dir):
    data = assert_envelope(await api("GET", "/workers"), 200, True)
    assert [w["name"] for w in data] == SAMPLE_NAMES
    for summary in data:
        path = workers_dir / ("%s.py" % summary["name"])
        assert_summary(summary, summary["name"], path.read_bytes())
        assert summary["modified"] == pytest.approx(path.stat().st_mtime, abs=1e-3)
    descriptions = {w["name"]: w["description"] for w in data}
    assert descriptions["Foobar"] == \
        "Logs 'foobar' and responds 'foobar': the smallest worker there is."
    # a multi-line docstring comes cleaned of its indentation, as ast.get_docstring gives it
    assert descriptions["TestWorker"].startswith("Counts: for each i below `count`")
    assert "\n'response i'" in descriptions["TestWorker"]


@pytest.mark.gen_test
async def test_list_of_an_empty_folder_is_an_empty_list(api, workers_dir):
    for path in workers_dir.iterdir():
        path.unlink()
    data = assert_envelope(await api("GET", "/workers"), 200, True)
    assert data == []


@pytest.mark.gen_test
async def test_list_skips_files_that_are_not_workers(api, workers_dir, write_worker):
    for name in ("1bad", "_private", ".Hidden", "with-dash", ".Foobar.abc123"):
        write_worker(name, worker_code("Foobar"))
    (workers_dir / "notes.txt").write_text("not a worker")
    (workers_dir / "Compiled.pyc").write_bytes(b"\0")
    (workers_dir / ".Foobar.x1y2.tmp").write_text("a save in progress")
    (workers_dir / "__pycache__").mkdir()
    (workers_dir / "Folder.py").mkdir()  # a directory named like a worker is not one
    data = assert_envelope(await api("GET", "/workers"), 200, True)
    assert [w["name"] for w in data] == SAMPLE_NAMES


@pytest.mark.gen_test
async def test_list_shows_a_broken_file_put_there_by_hand(api, write_worker):
    write_worker("Broken", "class Broken(:\n")
    data = assert_envelope(await api("GET", "/workers"), 200, True)
    broken = {w["name"]: w for w in data}["Broken"]
    assert broken["description"].startswith("(invalid worker: line 1")
    assert broken["error"].startswith("line 1") and broken["parameters"] is None
    assert_summary(broken, "Broken", "class Broken(:\n")
    assert {w["name"]: w for w in data}["Foobar"]["error"] is None  # a valid one has none


@pytest.mark.gen_test
async def test_missing_folder_lists_nothing_and_is_made_by_the_first_save(api, workers_dir):
    shutil.rmtree(workers_dir)
    assert assert_envelope(await api("GET", "/workers"), 200, True) == []
    assert_error(await api("GET", "/workers/Foobar"), 404)
    assert_envelope(await api("PUT", "/workers/Foobar", worker_code("Foobar")), 201, True)
    assert os.listdir(workers_dir) == ["Foobar.py"]


@pytest.mark.gen_test
async def test_get_one_worker(api, workers_dir):
    data = assert_envelope(await api("GET", "/workers/Foobar"), 200, True)
    assert len(data) == 1
    assert_summary(data[0], "Foobar", (workers_dir / "Foobar.py").read_bytes())
    assert data[0]["description"].startswith("Logs 'foobar'")


@pytest.mark.gen_test
async def test_worker_without_docstring_has_an_empty_description(api, write_worker):
    write_worker("Plain", "import jobjoker\n\nclass Plain(jobjoker.Worker):\n"
                          "    def run(self):\n        pass\n")
    data = assert_envelope(await api("GET", "/workers/Plain"), 200, True)
    assert data[0]["description"] == ""


@pytest.mark.gen_test
async def test_get_code_is_the_file_as_plain_text(api, workers_dir):
    reply = await api("GET", "/workers/TestWorker/code")
    assert reply.code == 200, reply
    assert reply.headers["Content-Type"].startswith("text/plain"), reply.headers
    assert reply.body == (workers_dir / "TestWorker.py").read_bytes()


@pytest.mark.gen_test
async def test_absent_worker_is_404_on_every_read(api):
    for path in ("/workers/Nobody", "/workers/Nobody/code"):
        data = assert_error(await api("GET", path), 404, "Nobody")
        assert data == []


@pytest.mark.gen_test
async def test_description_follows_the_content_even_with_an_unchanged_mtime(api, write_worker):
    # A file replaced by one of the same size within one timestamp tick, or copied with its
    # mtime kept (cp -p, rsync -t, tar), must not keep showing the old docstring.
    path = write_worker("Twin", worker_code("Twin", "First version."))
    first = os.stat(path)
    data = assert_envelope(await api("GET", "/workers/Twin"), 200, True)
    assert data[0]["description"] == "First version."
    write_worker("Twin", worker_code("Twin", "Other version."))
    os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert os.stat(path).st_size == first.st_size
    data = assert_envelope(await api("GET", "/workers/Twin"), 200, True)
    assert data[0]["hash"] == sha256(worker_code("Twin", "Other version."))
    assert data[0]["description"] == "Other version."


# --- saving ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_put_creates_a_worker(api, workers_dir):
    code = worker_code("Fresh", "Freshly made.")
    reply = await api("PUT", "/workers/Fresh", code)
    data = assert_envelope(reply, 201, True)
    assert "Fresh" in reply.json["message"] and "created" in reply.json["message"]
    assert len(data) == 1
    assert_summary(data[0], "Fresh", code)
    assert data[0]["description"] == "Freshly made."
    path = workers_dir / "Fresh.py"
    assert path.read_bytes() == code.encode()
    assert path.stat().st_mode & 0o777 == 0o644
    assert data[0]["modified"] == pytest.approx(path.stat().st_mtime, abs=1e-3)
    # what PUT answered is what GET, the list and the code now say
    assert assert_envelope(await api("GET", "/workers/Fresh"), 200, True) == data
    listed = assert_envelope(await api("GET", "/workers"), 200, True)
    assert [w for w in listed if w["name"] == "Fresh"] == data
    assert (await api("GET", "/workers/Fresh/code")).body == code.encode()
    assert sorted(os.listdir(workers_dir)) == ["Foobar.py", "Fresh.py", "TestWorker.py"]


@pytest.mark.gen_test
async def test_put_replaces_a_worker(api, workers_dir):
    old = assert_envelope(await api("GET", "/workers/Foobar"), 200, True)[0]
    code = worker_code("Foobar", "Foobar, rewritten.", "rewritten")
    reply = await api("PUT", "/workers/Foobar", code)
    data = assert_envelope(reply, 200, True)
    assert "Foobar" in reply.json["message"] and "saved" in reply.json["message"]
    assert_summary(data[0], "Foobar", code)
    assert data[0]["description"] == "Foobar, rewritten."
    assert data[0]["hash"] != old["hash"]
    assert (workers_dir / "Foobar.py").read_bytes() == code.encode()
    assert sorted(os.listdir(workers_dir)) == ["Foobar.py", "TestWorker.py"]


@pytest.mark.gen_test
async def test_hash_changes_with_the_content_and_only_with_it(api):
    first = worker_code("Hashed", message="one")
    second = worker_code("Hashed", message="two")  # same size, other content
    assert len(first) == len(second)
    hashes = []
    for code, status in ((first, 201), (second, 200), (first, 200)):
        data = assert_envelope(await api("PUT", "/workers/Hashed", code), status, True)
        assert data[0]["hash"] == sha256(code)
        hashes.append(data[0]["hash"])
    assert hashes[0] != hashes[1]
    assert hashes[2] == hashes[0]


@pytest.mark.gen_test
async def test_description_follows_a_same_size_replacement(api):
    for docstring, status in (("Version A.", 201), ("Version B.", 200), ("Version C.", 200)):
        reply = await api("PUT", "/workers/Described", worker_code("Described", docstring))
        data = assert_envelope(reply, status, True)
        assert data[0]["description"] == docstring
        got = assert_envelope(await api("GET", "/workers/Described"), 200, True)
        assert got[0]["description"] == docstring


@pytest.mark.gen_test
async def test_put_accepts_any_spelling_of_the_worker_base(api):
    variants = {
        "Aliased": "import jobjoker as jj\n\nclass Aliased(jj.Worker):\n"
                   "    def run(self):\n        pass\n",
        "Qualified": "import jobjoker\n\nclass Qualified(jobjoker.Worker):\n"
                     "    def run(self):\n        pass\n",
        "Mixed": "from jobjoker import Worker\n\nclass Base:\n    pass\n\n"
                 "class Mixed(Base, Worker):\n    def run(self):\n        pass\n",
    }
    for name, code in variants.items():
        assert_envelope(await api("PUT", "/workers/%s" % name, code), 201, True)


@pytest.mark.gen_test
async def test_put_accepts_a_utf8_byte_order_mark(api, workers_dir):
    # Python runs a file that starts with a UTF-8 BOM (Windows editors write one).
    code = b"\xef\xbb\xbf" + worker_code("Bommed", "With a BOM.").encode()
    data = assert_envelope(await api("PUT", "/workers/Bommed", code), 201, True)
    assert data[0]["description"] == "With a BOM."
    assert (workers_dir / "Bommed.py").read_bytes() == code


@pytest.mark.gen_test
async def test_put_keeps_non_ascii_code_byte_for_byte(api, workers_dir):
    code = worker_code("Unicode", "Grüße, 日本語 and emoji 🎉.", "héllo")
    data = assert_envelope(await api("PUT", "/workers/Unicode", code.encode()), 201, True)
    assert data[0]["description"] == "Grüße, 日本語 and emoji 🎉."
    assert (workers_dir / "Unicode.py").read_bytes() == code.encode()
    reply = await api("GET", "/workers/Unicode/code")
    assert reply.body == code.encode()


@pytest.mark.gen_test
async def test_longest_name_is_accepted(api, workers_dir):
    name = "W" + "a" * 62 + "9"
    assert len(name) == 64
    data = assert_envelope(await api("PUT", "/workers/%s" % name, worker_code(name)), 201,
                           True)
    assert data[0]["name"] == name
    assert (workers_dir / ("%s.py" % name)).exists()
    assert_envelope(await api("GET", "/workers/%s" % name), 200, True)
    assert_envelope(await api("DELETE", "/workers/%s" % name), 200, True)


@pytest.mark.gen_test
async def test_worker_size_limit_applies_and_is_inclusive(api, workers_dir):
    # Larger than max_body_size, within max_worker_size: the worker limit is the one that counts.
    code = padded_to(worker_code("Sized"), MAX_WORKER_SIZE)
    assert len(code.encode()) == MAX_WORKER_SIZE > MAX_BODY_SIZE
    data = assert_envelope(await api("PUT", "/workers/Sized", code), 201, True)
    assert data[0]["size"] == MAX_WORKER_SIZE
    assert (workers_dir / "Sized.py").read_bytes() == code.encode()


# --- refused saves ---------------------------------------------------------------------------

# name of the case -> (code for worker "Victim" as bytes, status, words the message must have,
#                      the line data[0] must give, or None for no data)
EMPTY = "the worker's code is empty: a worker is a Python file defining"
BAD_CODE = {
    "syntax error": (b"from jobjoker import Worker\n\nclass Victim(Worker):\n"
                     b"    def run(self)\n        pass\n", 422, ["line 4"], 4),
    "unclosed bracket": (b"from jobjoker import Worker\n\nx = (\n", 422, ["line 3"], 3),
    "empty body": (b"", 422, [EMPTY, "class Victim(jobjoker.Worker)", "run(self)"], None),
    "only whitespace": (b"\n   \n\t\n", 422, [EMPTY, "class Victim"], None),
    "only comments": (b"# Victim: to do\n\n", 422, [EMPTY, "class Victim"], None),
    "missing class": (b"from jobjoker import Worker\n\nclass Other(Worker):\n"
                      b"    def run(self):\n        pass\n", 422, ["class Victim"], None),
    "class not subclassing Worker": (b"class Victim:\n    def run(self):\n        pass\n", 422,
                                     ["line 1", "Victim", "jobjoker.Worker"], 1),
    "class subclassing object": (b"\n\nclass Victim(object):\n    def run(self):\n"
                                 b"        pass\n", 422, ["line 3", "jobjoker.Worker"], 3),
    "no run method": (b"from jobjoker import Worker\n\nclass Victim(Worker):\n"
                      b"    def walk(self):\n        pass\n", 422, ["line 3", "run"], 3),
    "run is not a method": (b"from jobjoker import Worker\n\nclass Victim(Worker):\n"
                            b"    run = None\n", 422, ["line 3", "run"], 3),
    "class only inside a function": (
        b"from jobjoker import Worker\n\n\ndef make():\n    class Victim(Worker):\n"
        b"        def run(self):\n            pass\n    return Victim\n\n\nVictim = make()\n",
        422, ["class Victim", "top level"], None),
    "class only inside an if": (
        b"from jobjoker import Worker\n\nif True:\n    class Victim(Worker):\n"
        b"        def run(self):\n            pass\n", 422, ["class Victim"], None),
    "nul byte": (b"from jobjoker import Worker\n\x00\n", 422, ["null bytes"], None),
    "not utf-8": (b"from jobjoker import Worker\n\nclass Victim(Worker):\n"
                  b"    \"\"\"Gr\xfc\xdfe.\"\"\"\n    def run(self):\n        pass\n", 400,
                  ["UTF-8"], None),
    "utf-16": ("from jobjoker import Worker\n".encode("utf-16"), 400, ["UTF-8"], None),
    "too large": (padded_to(worker_code("Victim"), MAX_WORKER_SIZE + 1).encode(), 413,
                  [str(MAX_WORKER_SIZE)], None),
}


@pytest.mark.parametrize("case", list(BAD_CODE))
@pytest.mark.parametrize("target", ["new", "existing"])
@pytest.mark.gen_test
async def test_refused_save_writes_nothing(api, workers_dir, write_worker, case, target):
    code, status, words, line = BAD_CODE[case]
    if target == "existing":
        write_worker("Victim", worker_code("Victim", "The original."))
    before = snapshot(workers_dir)
    reply = await api("PUT", "/workers/Victim", code)
    data = assert_error(reply, status, *words)
    assert "line None" not in reply.json["message"], reply
    if line is None:
        assert data == [], reply
    else:
        assert data == [{"line": line}], reply
    assert snapshot(workers_dir) == before  # old file intact, no new file, no temp file left
    if target == "existing":
        got = assert_envelope(await api("GET", "/workers/Victim"), 200, True)
        assert got[0]["description"] == "The original."
    else:
        assert_error(await api("GET", "/workers/Victim"), 404)


@pytest.fixture
def put_chunked(app, http_client, base_url):
    """``await put_chunked(name, code)``: PUT /workers/name with a chunked body (no
    Content-Length, so nothing can be refused before the body streams in)."""
    async def put(name, code):
        async def produce(write):
            for start in range(0, len(code), 1000):
                await write(code[start:start + 1000])

        return await http_client.fetch(
            base_url + "/workers/%s" % name, method="PUT", body_producer=produce,
            auth_username="admin", auth_password=PASSWORD, raise_error=False)
    return put


@pytest.mark.gen_test
async def test_chunked_upload_over_the_limit_is_413(put_chunked, workers_dir):
    before = snapshot(workers_dir)
    code = padded_to(worker_code("Foobar"), 3 * MAX_WORKER_SIZE).encode()
    response = await put_chunked("Foobar", code)
    assert response.code == 413, (response.code, response.body)
    assert response.headers["Content-Type"].startswith("application/json")
    assert str(MAX_WORKER_SIZE).encode() in response.body
    assert snapshot(workers_dir) == before


@pytest.mark.gen_test
async def test_chunked_upload_within_the_limit_is_saved(put_chunked, workers_dir):
    code = padded_to(worker_code("Chunked"), MAX_WORKER_SIZE).encode()
    response = await put_chunked("Chunked", code)
    assert response.code == 201, (response.code, response.body)
    assert (workers_dir / "Chunked.py").read_bytes() == code


# --- deleting --------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_delete_removes_the_worker(api, workers_dir):
    code = (workers_dir / "Foobar.py").read_bytes()
    reply = await api("DELETE", "/workers/Foobar")
    data = assert_envelope(reply, 200, True)
    assert "Foobar" in reply.json["message"] and "deleted" in reply.json["message"]
    assert_summary(data[0], "Foobar", code)  # the last summary of what was deleted
    assert sorted(os.listdir(workers_dir)) == ["TestWorker.py"]
    assert assert_error(await api("GET", "/workers/Foobar"), 404) == []
    assert assert_error(await api("GET", "/workers/Foobar/code"), 404) == []
    listed = assert_envelope(await api("GET", "/workers"), 200, True)
    assert [w["name"] for w in listed] == ["TestWorker"]


@pytest.mark.gen_test
async def test_delete_of_an_absent_worker_is_404(api, workers_dir):
    before = snapshot(workers_dir)
    data = assert_error(await api("DELETE", "/workers/Nobody"), 404, "Nobody")
    assert data == []
    assert snapshot(workers_dir) == before


@pytest.mark.gen_test
async def test_delete_twice_is_404_the_second_time(api):
    assert_envelope(await api("DELETE", "/workers/Foobar"), 200, True)
    assert_error(await api("DELETE", "/workers/Foobar"), 404, "Foobar")


@pytest.mark.gen_test
async def test_delete_is_refused_while_a_job_of_the_worker_is_active(
        api, run_job, wait_for_status, workers_dir):
    job = await run_job("TestWorker", {"count": 100, "sleep": 5})
    assert job["status"] == "active", job
    before = snapshot(workers_dir)
    reply = await api("DELETE", "/workers/TestWorker")
    assert assert_error(reply, 409, "TestWorker", job["id"], "stop") == []
    assert snapshot(workers_dir) == before
    assert_envelope(await api("GET", "/workers/TestWorker"), 200, True)
    # other workers stay deletable meanwhile
    assert_envelope(await api("DELETE", "/workers/Foobar"), 200, True)
    # once the job has ended the worker can go
    assert_envelope(await api("PUT", "/jobs/%s/status" % job["id"], "kill"), 202, True)
    ended = await wait_for_status(job["id"])
    assert ended["status"] == "stop", ended
    assert_envelope(await api("DELETE", "/workers/TestWorker"), 200, True)
    assert os.listdir(workers_dir) == []


# --- names -----------------------------------------------------------------------------------

# URL path segments that must never name a worker file; the comment says what they decode to.
BAD_NAMES = [
    "..%2F..%2Fetc%2Fpasswd",  # ../../etc/passwd
    "%2Fetc%2Fpasswd",  # /etc/passwd
    "..%2FOutside",  # ../Outside: a real worker file beside the workers folder
    "..%2Fworkers%2FFoobar",  # ../workers/Foobar: back into the folder by another path
    "sub%2FFoobar",  # sub/Foobar
    "a%00b",  # a NUL b
    "..",
    "%2E%2E",  # ..
    ".",
    "A" * 65,
    "1Worker",
    "_Worker",
    "Foobar.py",
    "My%20Worker",  # My Worker
    "Foobar%0A",  # Foobar + newline (what a $-anchored pattern would let through)
    "W%C3%B6rker",  # Wörker: an identifier to Python, not a worker name
    "%FF",  # not UTF-8
]


@pytest.fixture
def outside_worker(tmp_path):
    """A valid worker file beside the workers folder, which no request may reach."""
    path = tmp_path / "Outside.py"
    path.write_text(worker_code("Outside"))
    return path


@pytest.mark.parametrize("segment", BAD_NAMES)
@pytest.mark.gen_test
async def test_bad_names_are_400_on_every_method(api, workers_dir, outside_worker, tmp_path,
                                                 segment):
    def beside_the_folder():
        return {name for name in os.listdir(tmp_path) if not name.startswith("test.sqlite3")}

    before = snapshot(workers_dir)
    outside_before = outside_worker.read_bytes()
    beside_before = beside_the_folder()
    code = worker_code("Evil")
    for method, path, body in (("GET", "/workers/%s", None),
                               ("GET", "/workers/%s/code", None),
                               ("PUT", "/workers/%s", code),
                               ("DELETE", "/workers/%s", None)):
        reply = await api(method, path % segment, body)
        # Tornado itself refuses a path that is not UTF-8; every other name gets the rule
        words = ["unicode"] if segment == "%FF" else ["invalid worker name", "a letter"]
        assert assert_error(reply, 400, *words) == [], (method, reply)
    assert snapshot(workers_dir) == before
    assert outside_worker.read_bytes() == outside_before
    assert beside_the_folder() == beside_before
    for escaped in (tmp_path.parent / "etc", "/etc/passwd.py"):
        assert not os.path.exists(escaped), escaped


@pytest.mark.parametrize("path", ["/workers/../Outside", "/workers/../../etc/passwd",
                                  "/workers/sub/Foobar", "/workers/Foobar/code/x",
                                  "/workers/"])
@pytest.mark.gen_test
async def test_paths_no_route_matches_are_404(api, workers_dir, outside_worker, path):
    before = snapshot(workers_dir)
    outside_before = outside_worker.read_bytes()
    for method in ("GET", "PUT", "DELETE"):
        reply = await api(method, path, worker_code("Evil") if method == "PUT" else None)
        assert assert_error(reply, 404) == [], (method, reply)
    assert snapshot(workers_dir) == before
    assert outside_worker.read_bytes() == outside_before


@pytest.mark.gen_test
async def test_name_of_the_url_must_match_the_class(api, workers_dir):
    before = snapshot(workers_dir)
    reply = await api("PUT", "/workers/Foo", worker_code("Foobar"))
    assert_error(reply, 422, "class Foo(")
    reply = await api("PUT", "/workers/foobar", worker_code("Foobar"))  # names are case-sensitive
    assert_error(reply, 422, "class foobar(")
    assert snapshot(workers_dir) == before


# --- methods and authentication --------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("POST", "/workers"), ("DELETE", "/workers"),
                                          ("PUT", "/workers"), ("POST", "/workers/Foobar"),
                                          ("PUT", "/workers/Foobar/code"),
                                          ("DELETE", "/workers/Foobar/code")])
@pytest.mark.gen_test
async def test_other_methods_are_405_and_change_nothing(api, workers_dir, method, path):
    before = snapshot(workers_dir)
    reply = await api(method, path, worker_code("Foobar", "Changed.") if method != "DELETE"
                      else None)
    assert_error(reply, 405, method)
    assert snapshot(workers_dir) == before


ROUTES = [("GET", "/workers"), ("GET", "/workers/Foobar"), ("GET", "/workers/Foobar/code"),
          ("GET", "/workers/Nobody"), ("PUT", "/workers/Foobar"), ("PUT", "/workers/Newcomer"),
          ("DELETE", "/workers/Foobar"), ("DELETE", "/workers/Nobody")]
BAD_CREDENTIALS = {"none": None, "wrong password": ("admin", "not-the-password"),
                   "unknown user": ("nobody", PASSWORD), "empty password": ("admin", "")}


@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
@pytest.mark.gen_test
async def test_every_route_needs_credentials(api, workers_dir, credentials):
    before = snapshot(workers_dir)
    for method, path in ROUTES:
        body = worker_code(path.rsplit("/", 1)[1], "Written without credentials.") \
            if method == "PUT" else None
        reply = await api(method, path, body, auth=BAD_CREDENTIALS[credentials])
        assert assert_error(reply, 401, "credentials") == [], (method, path, reply)
        assert reply.headers["WWW-Authenticate"].startswith("Basic "), reply.headers
        assert b"Foobar" not in reply.body, reply  # nothing about the worker leaks
    assert snapshot(workers_dir) == before


@pytest.mark.gen_test
async def test_credentials_are_checked_before_the_size(api, workers_dir):
    before = snapshot(workers_dir)
    code = padded_to(worker_code("Newcomer"), MAX_WORKER_SIZE + 1)
    assert_error(await api("PUT", "/workers/Newcomer", code, auth=None), 401)
    assert snapshot(workers_dir) == before


# --- the round trip --------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_saved_worker_runs_then_is_deleted(api, run_job, workers_dir):
    # What the original PHP suite did with MyWorker.
    assert_envelope(await api("PUT", "/workers/MyWorker", worker_code("MyWorker")), 201, True)
    job = await run_job("MyWorker", wait=True)
    assert job["status"] == "done", job
    log = assert_envelope(await api("GET", "/jobs/%s/log" % job["id"]), 200, True)
    assert "MyWorker" in [entry["message"] for entry in log], log
    assert_envelope(await api("DELETE", "/workers/MyWorker"), 200, True)
    reply = await api("GET", "/workers/MyWorker")
    assert assert_error(reply, 404) == []
    assert not (workers_dir / "MyWorker.py").exists()


@pytest.mark.gen_test
async def test_saving_a_worker_does_not_change_how_other_workers_run(api, run_job):
    # Worker names may be lowercase, so one can be named like a module; saving it must not
    # replace that module for every other worker that imports it.
    shadow = ("from jobjoker import Worker\n\n\nclass random(Worker):\n"
              "    def run(self):\n        pass\n")
    assert_envelope(await api("PUT", "/workers/random", shadow), 201, True)
    user = ("import random\n\nfrom jobjoker import Worker\n\n\nclass Dice(Worker):\n"
            "    def run(self):\n        self.log('rolled %d' % random.randint(6, 6))\n")
    assert_envelope(await api("PUT", "/workers/Dice", user), 201, True)
    job = await run_job("Dice", wait=True)
    log = assert_envelope(await api("GET", "/jobs/%s/log" % job["id"]), 200, True)
    messages = [entry["message"] for entry in log]
    assert job["status"] == "done", (job, messages)
    assert "rolled 6" in messages, messages


@pytest.mark.gen_test
async def test_replaced_code_is_what_the_next_job_runs(api, run_job):
    for message, other, status in (("first code", "second code", 201),
                                   ("second code", "first code", 200)):
        code = worker_code("Changing", message=message)
        assert_envelope(await api("PUT", "/workers/Changing", code), status, True)
        job = await run_job("Changing", wait=True)
        assert job["status"] == "done", job
        log = assert_envelope(await api("GET", "/jobs/%s/log" % job["id"]), 200, True)
        messages = [entry["message"] for entry in log]
        assert message in messages and other not in messages, messages
