"""The README's examples run as written, against a real server, on a fresh checkout's layout.

``test_every_shell_example_runs_as_written`` runs every ```` ```sh ```` block of README.md, in
order, with ``bash``, as a reader would type them into one terminal: each block starts in the
checkout (a temp copy of its layout: ``workers/`` with the shipped workers, ``db/`` as the data
dir, ``.venv`` linked to the environment running the tests), and the variables a block sets (its
``export``, ``JJ=...``, ``. .venv/bin/activate``) reach the blocks after it. The server is
``run_server.py`` on SQLite, started the way ``make serve`` starts it, with ``admin``'s password
``your-password``, the README's placeholder for it. ``PATH`` does not hold ``.venv/bin`` until
a block puts it there, as after ``make serve``. A block must exit 0 (it runs under
``set -e -o pipefail``), and where the README shows its output (the un-tagged block right after
it), the real output must agree: the same HTTP status line, ``"success": false`` in both or in
neither, the same ``ENDED <status>`` lines. ``CHECKS`` adds what key examples must print.

What the test substitutes, and why:
- Ids and tokens. The README shows the ids and tokens a real run printed (``01m8rtn1yt7jbf666eg2``,
  ``jj_9514967443bb_...``). Where a block's output shows one, the test learns the real value the
  server gave in its place, and writes that value wherever a later block uses the README's.
- The port, only when 8080 is taken (another server, another run of this test): then the server
  listens on a free port, ``127.0.0.1:8080`` in the blocks becomes that port, and the blocks get
  ``JOBJOKER_URL`` set to it (the command line's default is 8080).
- ``JOBJOKER_NEW_PASSWORD`` is set, as the README says a script may do, so that
  ``jobjoker users add`` does not ask for a password on a terminal the test has not.
- Before a block whose README output shows ``ENDED``, the test waits (for the event, with a
  deadline only a failure reaches) until the jobs the block names have ended, as the reader
  does ("a few seconds later").

A block preceded by ``<!-- readme-test: skip, REASON -->`` is not run, and must say why: the
ones that start a server that runs until Ctrl-C (``make serve``, ``jobjoker serve``), install
into the reader's environment, or run this suite (``make test``). The password recovery
recipes, which delete every account, are run by ``test_the_password_recovery_recipes_work``
on a server of their own (SQLite with the ``sqlite3`` tool, MariaDB with the ``mysql`` one).

Python blocks: the worker files the README prints are the shipped ones
(``test_the_workers_the_readme_prints_are_the_shipped_ones``), and a script followed by a
``$ ...`` command in its output block (``follow_job.py``) is saved under its name and run by
that command, in the sequence above.
"""
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import urllib.parse

import pytest

from tests.conftest import MYSQL_URL
from tests.support import (POSTGRESQL_URL, ROOT, ServerProcess, call, postgresql_admin,
                           unavailable, until)

README = ROOT / "README.md"
PASSWORD = "your-password"  # the README's placeholder for admin's password
README_PORT = 8080
SKIP = "<!-- readme-test: skip"
RECOVERY = "<!-- readme-test: skip, run by test_the_password_recovery_recipes_work (%s) -->"
BLOCK_TIMEOUT = 180  # seconds; a block ends long before, unless it hangs
# What key examples must print, beyond what the README shows: {a piece of the command: [pieces
# of its output]}. Every key must match a block, so that an edit of the README cannot drop one.
CHECKS = {
    "jobjoker run TestWorker -p count=3 --follow": ["log 2", "ENDED done", "--- response ---",
                                                    "response 2"],
    "jobjoker users add ann --role operator": ["user ann added (operator)"],
    '"colour": "red"': ["pattern is required", "unknown parameter colour"],
    '"api_key": "k-7f3a9c2e"': ['"api_key": "********"', '"limit": 100'],
    "jobjoker run Checksums --follow": ["checked Foobar.py", "ENDED done"],
    "from Checksums import Checksums": ['[progress] 100% all checked',
                                        '[result] {"Foobar.py":"', "[response] 1 files checked"],
    "jobjoker run Checksums -p pattern='F*.py' --wait": ['{"Foobar.py": "'],
    "-d start": ['"status": "active"'],
    "-OJ": [],  # the file it saves: below
    "Authorization: Bearer": ['"success": true'],
    "follow_job.py": ["response 2: response 2", "ended done"],
    "jobjoker audit --action job.start": ["job.start"],
}
# Masked in the log of the LineCount example (its secret never shows).
SECRET = "k-7f3a9c2e"

JOB_ID = re.compile(r"\b[0-9a-z]{20}\b")
TOKEN = re.compile(r"\bjj_[0-9a-f]{12}_[A-Za-z0-9_-]+")
TOKEN_ID = re.compile(r'(?<=token )[0-9a-f]{12}\b|(?<="id": ")[0-9a-f]{12}(?=")'
                      r"|(?<=/tokens/)[0-9a-f]{12}\b")
KINDS = (TOKEN, TOKEN_ID, JOB_ID)  # a token holds its id: tokens are found (and cut) first


# --- reading the README ------------------------------------------------------------------------

class Block:
    """A fenced block of the README: its language, text, first line and the marker before it."""

    def __init__(self, language, text, line, marker):
        self.language, self.text, self.line, self.marker = language, text, line, marker
        self.output = None  # the un-tagged block right after it, if any

    def __repr__(self):
        return "README.md line %d (%s)" % (self.line, self.language or "output")


def readme_blocks():
    """Every fenced block of README.md, list items' indented ones included."""
    lines = README.read_text().splitlines()
    blocks, i, previous_end = [], 0, -1
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, language, start = len(fence.group(1)), fence.group(2), i
        before = [line.strip() for line in lines[:start] if line.strip()]
        marker = before[-1] if before and before[-1].startswith("<!--") else None
        i += 1
        body = []
        while not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][indent:])
            i += 1
        block = Block(language, "\n".join(body) + "\n", start + 1, marker)
        if blocks and not language and not blocks[-1].output and blocks[-1].language and \
                all(not line.strip() for line in lines[previous_end + 1:start]):
            blocks[-1].output = block
        else:
            blocks.append(block)
        previous_end = i
        i += 1
    return blocks


def values(text):
    """The ids and tokens in ``text``, per kind, in order of first appearance."""
    found = []
    for kind in KINDS:
        seen = []
        for match in kind.findall(text):
            if match not in seen:
                seen.append(match)
        found.append(seen)
        text = kind.sub(" ", text)
    return found


# --- the checkout and its server ---------------------------------------------------------------

def port_is_free(port):
    """True when nothing listens on ``port`` (connections closing there are no obstacle: the
    server binds with SO_REUSEADDR, as this check does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def checkout_layout(root):
    """``root`` laid out as a fresh checkout after ``make``: the shipped workers, an empty data
    dir, and ``.venv`` (the environment running these tests)."""
    if sys.prefix == sys.base_prefix:
        unavailable("the README's examples use .venv: run the tests in a virtualenv (make test)")
    shutil.copytree(ROOT / "workers", root / "workers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(sys.prefix)
    return root


def start_server(root, password=PASSWORD, *args, port=None):
    """``run_server.py`` with ``db/`` and ``workers/`` of ``root``, as ``make serve`` runs it."""
    server = ServerProcess(root, *args, password=password, port=port,
                           data_dir=root / "db", workers_dir=root / "workers")
    return server.wait_ready()


def shell_environment(server):
    """The environment of a new terminal: no JOBJOKER_ variables, and PATH without the venv."""
    bin_dir = os.path.realpath(os.path.dirname(sys.executable))
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("JOBJOKER_") and k != "VIRTUAL_ENV"}
    environ["PATH"] = os.pathsep.join(d for d in environ.get("PATH", "").split(os.pathsep)
                                      if os.path.realpath(d) != bin_dir)
    environ["JOBJOKER_NEW_PASSWORD"] = "ann-password-0123"
    if server.port != README_PORT:
        environ["JOBJOKER_URL"] = server.url
    return environ


class Terminal:
    """Runs blocks one after another in ``root`` as one terminal would: a variable a block sets
    reaches the later ones (bash's ``set -a``, then ``export -p`` into a state file)."""

    def __init__(self, root, environ):
        self.root, self.environ = root, environ
        self.state = root / ".terminal-state"
        self.state.write_text("")

    def run(self, text):
        script = "\n".join([
            "set -a", ". %s" % shlex.quote(str(self.state)), "set -e -o pipefail",
            text,
            "set +e",
            "export -p | grep -v -e '^declare -x PWD=' -e '^declare -x OLDPWD=' > %s"
            % shlex.quote(str(self.state))])
        return subprocess.run(["bash", "-c", script], cwd=self.root, env=self.environ,
                              capture_output=True, text=True, timeout=BLOCK_TIMEOUT)


# --- the examples ------------------------------------------------------------------------------

@pytest.mark.timeout(900)  # ~25 s here; every wait inside has its own deadline
def test_every_shell_example_runs_as_written(tmp_path):
    for tool, package in (("bash", "bash"), ("curl", "curl")):
        if shutil.which(tool) is None:
            unavailable("the README's examples need %s (apt-get install %s)" % (tool, package))
    root = checkout_layout(tmp_path / "checkout")
    port = README_PORT if port_is_free(README_PORT) else None
    server = start_server(root, port=port)
    try:
        run_examples(root, server)
    finally:
        server.discard()


def run_examples(root, server):
    terminal = Terminal(root, shell_environment(server))
    known = {}  # the README's id or token -> the one the server really gave
    checked = set()
    ran = 0
    for block in readme_blocks():
        if block.marker and block.marker.startswith(SKIP):
            assert re.match(r"<!-- readme-test: skip, \S.* -->$", block.marker), \
                "%r: a skipped example says why: %s" % (block, block.marker)
            continue
        command = runnable(block, root)
        if command is None:
            continue
        command = substitute(command, known, block, server)
        if block.output and "ENDED" in block.output.text:
            wait_for_jobs_in(command, server)
        result = terminal.run(command)
        # What the README shows is what a terminal shows: curl writes no progress meter there
        # (its stderr here), and the command line's messages go to stderr.
        output = result.stdout + result.stderr
        where = "%r exited %d:\n%s\n--- its output:\n%s" % (block, result.returncode, command,
                                                           output[-4000:])
        assert result.returncode == 0, where
        if block.output:
            agree(block.output.text, result.stdout, where)
            learn(block.output.text, result.stdout, known)
        for piece, expected in CHECKS.items():
            if piece in command or piece in block.text:
                checked.add(piece)
                for text in expected:
                    assert text in output, "%s\n--- missing: %r" % (where, text)
        assert SECRET not in output or SECRET in command, where  # never shown back
        ran += 1
        if os.environ.get("README_TEST_SHOW"):
            print("=== %r\n%s--- output:\n%s" % (block, command, output))
    assert ran >= 12, "only %d examples ran" % ran
    [download] = root.glob("job-*-log.txt")  # curl -OJ .../log/download
    assert "a note from outside" in download.read_text()
    assert checked == set(CHECKS), "no README example for %s" % (set(CHECKS) - checked)


def runnable(block, root):
    """The shell text to run for ``block``, or None when it is not a command to run."""
    if block.language == "sh":
        return block.text
    if block.language == "python" and block.output and \
            block.output.text.startswith("$ "):
        # A script, then the command that runs it: save it under the name that command uses.
        line = block.output.text.splitlines()[0][2:]
        [name] = [word for word in shlex.split(line) if word.endswith(".py")]
        (root / name).write_text(block.text)
        block.output.text = block.output.text.split("\n", 1)[1]
        return line + "\n"
    return None


def substitute(command, known, block, server):
    """``command`` with the README's ids and tokens replaced by the real ones, and its port."""
    for sample in sorted(known, key=len, reverse=True):
        command = command.replace(sample, known[sample])
    for kind in KINDS:
        for value in kind.findall(command):
            assert value in known.values(), \
                "%r uses %s, which no earlier example printed" % (block, value)
    if server.port != README_PORT:
        command = command.replace("127.0.0.1:%d" % README_PORT, "127.0.0.1:%d" % server.port)
    return command


def learn(shown, output, known):
    """Pair the ids and tokens the README shows with the ones the real output has."""
    for samples, reals in zip(values(shown), values(output)):
        for sample, real in zip(samples, reals):
            known.setdefault(sample, real)


def agree(shown, output, where):
    """The real output says what the README's shows: status line, success, how jobs ended."""
    if shown.startswith("HTTP/"):
        assert output.splitlines()[0].strip() == shown.splitlines()[0].strip(), where
    assert ('"success": false' in shown) == ('"success": false' in output), where
    for ended in re.findall(r"^(?:ENDED|ended) \w+", shown, re.MULTILINE):
        assert re.search(r"^%s\b" % ended, output, re.MULTILINE), \
            "%s\n--- missing: %r" % (where, ended)
    for header in re.findall(r"^--- .* ---$", shown, re.MULTILINE):  # run --follow's response
        assert header in output.splitlines(), "%s\n--- missing: %r" % (where, header)


def wait_for_jobs_in(command, server):
    """Wait until every job the command names has ended (the README's "once it has ended")."""
    for job_id in set(JOB_ID.findall(command)):
        until(lambda: server.job(job_id)["status"] not in ("idle", "active"), timeout=120,
              what="job %s to end" % job_id)


# --- the workers it prints ---------------------------------------------------------------------

def test_the_workers_the_readme_prints_are_the_shipped_ones():
    """A worker the README prints under its file name (``workers/LineCount.py``:) is that file,
    to the byte: the examples that push or run it use the shipped one."""
    text = README.read_text()
    printed = re.findall(r"^`(workers/\w+\.py)`:\n\n```python\n(.*?)^```$", text,
                         re.MULTILINE | re.DOTALL)
    assert {name for name, _ in printed} >= {"workers/LineCount.py", "workers/Checksums.py"}
    for name, code in printed:
        assert (ROOT / name).read_text() == code, "%s differs from the README's" % name


# --- the password recovery recipes -------------------------------------------------------------

def recovery_recipe(database):
    [block] = [b for b in readme_blocks() if b.marker == RECOVERY % database]
    return block.text


def sql_of(recipe):
    """The SQL the recipe runs: its one single-quoted argument."""
    [statements] = re.findall(r"'([^']*)'", recipe)
    return statements


@pytest.fixture
def mysql_database():
    """A MariaDB/MySQL database of this test's own (dropped afterwards) and its name."""
    try:
        import pymysql
        parts = urllib.parse.urlsplit(MYSQL_URL)
        name = "jobjoker_readme_%d" % os.getpid()
        connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                     user=parts.username or "root",
                                     password=parts.password or "", connect_timeout=3)
    except Exception as e:  # no driver, no server, no right: any of them
        unavailable("MySQL at %s is not available: %s" % (MYSQL_URL, e))
    with connection:
        with connection.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS `%s`" % name)
            cursor.execute("CREATE DATABASE `%s` CHARACTER SET utf8mb4" % name)
        yield parts, name
        with connection.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS `%s`" % name)


@pytest.fixture
def postgresql_database():
    """A PostgreSQL database of this test's own (dropped afterwards): (URL parts, its name)."""
    name = "jobjoker_readme_%d" % os.getpid()
    parts = urllib.parse.urlsplit(POSTGRESQL_URL)._replace(path="/" + name)
    url = urllib.parse.urlunsplit(parts)
    try:
        postgresql_admin(url, 'DROP DATABASE IF EXISTS "%s"')
        postgresql_admin(url, 'CREATE DATABASE "%s"')
    except Exception as e:  # no driver, no server, no right: any of them
        unavailable("postgresql at %s is not available: %s" % (POSTGRESQL_URL, e))
    yield parts, name
    postgresql_admin(url, 'DROP DATABASE IF EXISTS "%s"')


def run_recipe_sql(database, recipe, parts, name):
    """The recipe's SQL through the database's own tool, as the test database's user (the
    README's command names the reader's user, and asks for a password on a terminal)."""
    user = parts.username or ("root" if database == "mysql" else "postgres")
    if database == "mysql":
        command = ["mysql", "--user=%s" % user, "--host=%s" % parts.hostname,
                   "--port=%d" % (parts.port or 3306), name, "-e", sql_of(recipe)]
        environ = dict(os.environ, MYSQL_PWD=parts.password or "")
    else:
        command = ["psql", "--no-password", "--set=ON_ERROR_STOP=1", "--username=%s" % user,
                   "--host=%s" % parts.hostname, "--port=%d" % (parts.port or 5432), name,
                   "-c", sql_of(recipe)]
        environ = dict(os.environ, PGPASSWORD=parts.password or "")
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environ)


TOOLS = {"sqlite": ("sqlite3", "sqlite3"), "mysql": ("mysql", "mariadb-client"),
         "postgresql": ("psql", "postgresql-client")}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("database", ["sqlite", "mysql", "postgresql"])
def test_the_password_recovery_recipes_work(tmp_path, request, database):
    """"If no admin can sign in any more": stop the server, run the README's recipe, start
    again; the server makes ``admin`` anew, and the old accounts, tokens and sessions are gone.
    The SQLite recipe runs as written (in the checkout, on ``db/jobjoker.sqlite3``); the MySQL
    one asks its password on a terminal, so its SQL runs through ``mysql`` as root on the
    test's MariaDB."""
    recipe = recovery_recipe(database)
    tool, package = TOOLS[database]
    if shutil.which(tool) is None:
        unavailable("the %s tool is not installed (apt-get install %s)" % (tool, package))
    root = checkout_layout(tmp_path / "checkout")
    args = ()
    if database != "sqlite":
        parts, name = request.getfixturevalue("%s_database" % database)
        url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
        args = ("--database", url)
    server = start_server(root, "forgotten-password", *args)
    try:
        server.auth = ("admin", "forgotten-password")
        server.api("POST", "/users", {"username": "ann", "password": "ann-password-0123",
                                      "role": "admin"})
        [token] = server.api("POST", "/tokens", {"name": "script", "role": "admin"})
        assert server.stop() == 0
        if database == "sqlite":
            result = subprocess.run(["bash", "-e", "-c", recipe], cwd=root, capture_output=True,
                                    text=True, timeout=60)
        else:
            result = run_recipe_sql(database, recipe, parts, name)
        assert result.returncode == 0, result.stdout + result.stderr
        server.env = {"JOBJOKER_ADMIN_PASSWORD": "a-new-password"}
        server.password = None  # the environment above gives it
        server.start().wait_ready()
        assert "created user 'admin'" in server.stderr.split("SIGTERM")[-1]
        assert server.call("GET", "/jobs", auth=("admin", "a-new-password")).code == 200
        assert server.call("GET", "/jobs", auth=("admin", "forgotten-password")).code == 401
        assert server.call("GET", "/jobs", auth=("ann", "ann-password-0123")).code == 401
        assert call(server.url, "GET", "/jobs", auth=None,
                    headers={"Authorization": "Bearer " + token["token"]}).code == 401
    finally:
        server.discard()


def test_no_example_is_left_unrun_without_a_reason():
    """Every shell block runs, or its marker says why not (checked without a server, so that a
    bad marker shows even where the examples cannot run)."""
    for block in readme_blocks():
        if block.language == "sh" and block.marker and block.marker.startswith("<!--"):
            assert re.match(r"<!-- readme-test: skip, \S.* -->$", block.marker), block
