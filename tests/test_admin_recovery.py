"""``jobjoker reset-admin``: when no admin can sign in, on SQLite, MariaDB and PostgreSQL alike.

The command runs as an operator runs it, beside a running server on the same database: the
admin whose password is lost gets a new one, its sessions ended; one disabled and demoted by
another admin is an active admin again; the other users keep theirs; a missing user is created;
a bad name or password and a database the server never migrated are refused with what to do.
"""
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import scratch_database
from tests.support import ROOT, ServerProcess, call, cookies_of, unavailable

NEW_PASSWORD = "the-new-password-0123"


@pytest.fixture
def database(request, tmp_path):
    """Server options naming an empty database of the parametrised kind (dropped after)."""
    if request.param == "sqlite":
        yield ()
        return
    yield ("--database", scratch_database(request, request.param,
                                          "jobjoker_recovery_%d" % os.getpid()))


def reset_admin(server, *args, password=NEW_PASSWORD):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    if password is not None:
        environ["JOBJOKER_NEW_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "jobjoker.cli", "reset-admin", *args,
                           "--data-dir", str(server.data_dir), *server.args],
                          capture_output=True, text=True, timeout=120, env=environ, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("database", ["sqlite", "mysql", "postgresql"], indirect=True)
def test_reset_admin_gives_the_admin_back_on_every_database(tmp_path, database):
    server = ServerProcess(tmp_path, *database)
    try:
        server.wait_ready()
        server.api("POST", "/users", {"username": "ann", "password": "ann-password-0123",
                                      "role": "admin"})
        session = server.call("POST", "/session", {"username": "admin",
                                                   "password": server.password}, auth=None)
        assert session.code == 201, session
        cookie = {"Cookie": "; ".join("%s=%s" % (name, value)
                                      for name, (value, _) in cookies_of(session).items())}
        assert call(server.url, "GET", "/users", auth=None, headers=cookie).code == 200

        # Its password lost: a new one, and its sessions end (the other users keep theirs).
        result = reset_admin(server)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "admin: a new password; its sessions ended"
        assert call(server.url, "GET", "/users", auth=("admin", NEW_PASSWORD)).code == 200
        assert call(server.url, "GET", "/users", auth=("admin", server.password)).code == 401
        assert call(server.url, "GET", "/users", auth=None, headers=cookie).code == 401
        assert call(server.url, "GET", "/users", auth=("ann", "ann-password-0123")).code == 200

        # Demoted and disabled by another admin: an active admin again.
        server.auth = ("ann", "ann-password-0123")
        server.api("PATCH", "/users/admin", {"role": "viewer", "disabled": True})
        assert call(server.url, "GET", "/users", auth=("admin", NEW_PASSWORD)).code == 401
        result = reset_admin(server, password="a-third-password-456")
        assert result.returncode == 0, result.stderr
        assert "made an active admin (was viewer, disabled)" in result.stdout
        assert call(server.url, "GET", "/users", auth=("admin", "a-third-password-456")
                    ).code == 200
        actions = [(e["action"], e["target"]) for e in server.api("GET", "/audit?limit=10")]
        assert ("user.password", "admin") in actions and ("user.update", "admin") in actions

        result = reset_admin(server, "bob")
        assert result.returncode == 0, result.stderr
        assert "created bob as an admin" in result.stdout
        assert call(server.url, "GET", "/users", auth=("bob", NEW_PASSWORD)).code == 200
    finally:
        server.discard()


@pytest.mark.parametrize("args, password, code, message", [
    (("no such user!",), NEW_PASSWORD, 1, "is not a valid user name"),
    ((), "short", 1, "a password must be text of 10"),
    ((), None, 2, "set JOBJOKER_NEW_PASSWORD"),
])
def test_reset_admin_refuses_bad_input_with_what_to_fix(tmp_path, args, password, code,
                                                        message):
    server = ServerProcess.__new__(ServerProcess)  # only its options: nothing is started
    server.data_dir, server.args = tmp_path / "data", ()
    result = reset_admin(server, *args, password=password)
    assert result.returncode == code, result.stderr
    assert message in result.stderr, result.stderr


def test_reset_admin_never_migrates(tmp_path):
    """A database the server never started on has no tables: the command says to start the
    server once, and creates nothing (it may run with a user that has row rights only)."""
    if shutil.which("sqlite3") is None:
        unavailable("the sqlite3 tool is not installed (apt-get install sqlite3)")
    server = ServerProcess.__new__(ServerProcess)
    server.data_dir = tmp_path / "data"
    database = tmp_path / "empty.sqlite3"
    subprocess.run(["sqlite3", str(database), "VACUUM"], check=True)
    server.args = ("--database", "sqlite:///%s" % database)
    result = reset_admin(server)
    assert result.returncode == 1
    assert "start this version's server once" in result.stderr
    tables = subprocess.run(["sqlite3", str(database), ".tables"], capture_output=True,
                            text=True, check=True).stdout
    assert tables.strip() == ""
