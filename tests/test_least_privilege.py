"""Least privilege (docs/deploy.md): the warnings at start, and a server on MariaDB that runs with
only the rights to read and write rows once a migration user has made its tables.

The warnings (``config.startup_warnings``) come when they should and not otherwise: a config
file every user may read while it holds the database password; root without ``--run-as``. One
test runs ``jobjoker serve`` to see them in its log.
"""
import dataclasses
import os
import subprocess
import sys
import urllib.parse

import pytest

from jobjoker.config import load_config, startup_warnings
from tests.conftest import MYSQL_URL
from tests.support import ROOT, ServerProcess, unavailable

WITH_PASSWORD = 'database = "mysql://jobjoker:hunter2-secret@127.0.0.1:9/jobjoker"\n'
WITHOUT_PASSWORD = 'database = "mysql://jobjoker@127.0.0.1:9/jobjoker"\n'
READABLE = "every user of this machine may read it"
ROOT_WARNING = "running as root without --run-as"


def config_file(tmp_path, text, mode):
    path = tmp_path / "jobjoker.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("text, mode, warned", [
    (WITH_PASSWORD, 0o644, True),
    (WITH_PASSWORD, 0o604, True),
    (WITH_PASSWORD, 0o640, False),  # the server's group may read it: the documented mode
    (WITH_PASSWORD, 0o600, False),
    (WITHOUT_PASSWORD, 0o644, False),
    ('port = 9000\n', 0o644, False),
])
def test_a_world_readable_config_file_is_warned_of_only_when_it_holds_a_password(
        tmp_path, text, mode, warned):
    path = config_file(tmp_path, text, mode)
    for given, environ in ((path, {}), (None, {"JOBJOKER_CONFIG": path})):
        config = load_config({"data_dir": tmp_path}, environ=environ, config_file=given)
        warnings = startup_warnings(config, given, environ=environ, euid=1000)
        assert [READABLE in w for w in warnings] == ([True] if warned else []), warnings
        if warned:
            assert "chmod 640 %s" % path in warnings[0]
            assert "hunter2" not in warnings[0]


def test_root_without_run_as_is_warned_of_and_nothing_else_is(tmp_path):
    config = load_config({"data_dir": tmp_path}, environ={})
    [warning] = startup_warnings(config, environ={}, euid=0)
    assert ROOT_WARNING in warning and "--run-as USER" in warning
    assert startup_warnings(config, environ={}, euid=1000) == []
    # check_run_as (which needs root and a real user) is load_config's: not repeated here.
    assert startup_warnings(dataclasses.replace(config, run_as="nobody"), environ={},
                            euid=0) == []


def test_jobjoker_serve_logs_the_warnings_at_start(tmp_path):
    """Through the command: the warnings are in its log before it opens the database (here one
    that refuses the connection, so it stops there), and the password is not."""
    path = config_file(tmp_path, WITH_PASSWORD + "port = 0\n", 0o644)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
    result = subprocess.run([sys.executable, "-m", "jobjoker.cli", "serve", "--config", path,
                             "--data-dir", str(tmp_path / "data")], capture_output=True,
                            text=True, timeout=120, env=environ, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    assert READABLE in result.stderr
    assert (ROOT_WARNING in result.stderr) == (os.geteuid() == 0)
    assert "hunter2" not in result.stderr
    os.chmod(path, 0o640)
    result = subprocess.run(result.args, capture_output=True, text=True, timeout=120,
                            env=environ, cwd=ROOT)
    assert READABLE not in result.stderr


# --- database privileges ------------------------------------------------------------------------

RUNTIME_USER = "jj_runtime_%d" % os.getpid()
MIGRATION_USER = "jj_migrate_%d" % os.getpid()
# What docs/deploy.md ("Least privilege") tells an operator to grant, with these names.
GRANT_DML = "GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO '{user}'@'%'"
GRANT_DDL = ("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES "
             "ON `{database}`.* TO '{user}'@'%'")


def mysql_as_root(*statements):
    import pymysql
    parts = urllib.parse.urlsplit(MYSQL_URL)
    connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                 user=parts.username or "root", password=parts.password or "",
                                 connect_timeout=3)
    with connection:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)


@pytest.fixture
def restricted_mysql():
    """A database of its own with a migration user (DDL and DML) and a runtime user (DML only);
    yields their URLs."""
    parts = urllib.parse.urlsplit(MYSQL_URL)
    database = "jobjoker_privileges_%d" % os.getpid()
    users = {MIGRATION_USER: GRANT_DDL, RUNTIME_USER: GRANT_DML}
    dropping = ["DROP USER IF EXISTS '%s'@'%%'" % user for user in users] + [
        "DROP DATABASE IF EXISTS `%s`" % database]
    try:
        mysql_as_root(*dropping, "CREATE DATABASE `%s` CHARACTER SET utf8mb4" % database, *[
            statement for user, grant in users.items() for statement in (
                "CREATE USER '%s'@'%%' IDENTIFIED BY 'pw-%s'" % (user, user),
                grant.format(database=database, user=user))])
    except Exception as e:  # no driver, no server, no right to make users: any of them
        unavailable("MySQL at %s is not available to make users: %s" % (MYSQL_URL, e))
    host = "%s:%d" % (parts.hostname, parts.port or 3306)
    yield {user: "mysql://%s:pw-%s@%s/%s" % (user, user, host, database) for user in users}
    mysql_as_root(*dropping)


@pytest.mark.timeout(300)
def test_the_server_runs_on_mariadb_with_only_row_rights_once_migrated(tmp_path,
                                                                       restricted_mysql):
    """The runtime user cannot create the tables (proof that it has no DDL right), the migration
    user can; then the runtime user's server runs, logs and stores jobs."""
    runtime = restricted_mysql[RUNTIME_USER]
    refused = ServerProcess(tmp_path, "--database", runtime)
    try:
        assert refused.process.wait(timeout=120) == 1
        assert "CREATE command denied" in refused.stderr, refused.stderr
        assert "pw-" not in refused.stderr
    finally:
        refused.discard()
    migrating = ServerProcess(tmp_path, "--database", restricted_mysql[MIGRATION_USER])
    try:
        migrating.wait_ready()
        assert migrating.stop() == 0
    finally:
        migrating.discard()
    server = ServerProcess(tmp_path, "--database", runtime)
    try:
        server.wait_ready()
        job = server.create_job("TestWorker", {"count": 3, "sleep": 0})
        assert server.wait_for_job(job["id"])["status"] == "done"
        assert "log 2" in server.messages(job["id"])
        assert server.call("DELETE", "/jobs/%s" % job["id"]).code == 200
        assert server.stop() == 0
    finally:
        server.discard()
