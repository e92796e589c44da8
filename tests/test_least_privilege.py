"""Least privilege (docs/deploy.md): the warnings at start, and a server on MariaDB and on
PostgreSQL that runs with only the rights to read and write rows once a migration user has made
its tables, whose backup that user dumps and the migration user restores.

The warnings (``least_privilege.startup_warnings``) come when they should and not otherwise: a config
file every user may read while it holds the database password; root without ``--run-as``. One
test runs ``jobjoker serve`` to see them in its log.
"""
import dataclasses
import os
import re
import subprocess
import sys
import urllib.parse

import pytest

from jobjoker.config import load_config
from jobjoker.least_privilege import startup_warnings
from tests.conftest import MYSQL_URL
from tests.support import POSTGRESQL_URL, ROOT, ServerProcess, unavailable

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

MIGRATION_USER = "jj_migrate_%d" % os.getpid()
RUNTIME_USER = "jj_runtime_%d" % os.getpid()
DATABASE = "jobjoker_privileges_%d" % os.getpid()
RESTORED = DATABASE + "_restored"
# What docs/deploy.md ("Least privilege") tells an operator to run, with the names above.
MYSQL_GRANTS = [
    "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES "
    "ON `{database}`.* TO '{migration}'@'%'",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO '{runtime}'@'%'"]
POSTGRESQL_GRANTS = [  # in the database, before the first start (it covers later tables too)
    "GRANT USAGE ON SCHEMA public TO {runtime}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {migration} IN SCHEMA public "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {migration} IN SCHEMA public "
    "GRANT USAGE, SELECT ON SEQUENCES TO {runtime}"]


def run_as_superuser(kind, statements, database=None):
    """``statements`` as the test server's superuser, in ``database`` (or none)."""
    if kind == "mysql":
        import pymysql
        parts = urllib.parse.urlsplit(MYSQL_URL)
        connection = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                                     user=parts.username or "root",
                                     password=parts.password or "", connect_timeout=3)
    else:
        import psycopg2
        parts = urllib.parse.urlsplit(POSTGRESQL_URL)
        connection = psycopg2.connect(host=parts.hostname, port=parts.port or 5432,
                                      user=parts.username or "postgres",
                                      password=parts.password or "",
                                      dbname=database or "postgres", connect_timeout=3)
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture
def restricted(request):
    """Two databases of their own (one to restore a backup into) with a migration user (who may
    change the schema) and a runtime user (who may only read and write rows), of the
    parametrised kind, granted as docs/deploy.md says; yields ``url(user, database)``."""
    kind = request.param
    users = (MIGRATION_USER, RUNTIME_USER)
    databases = (DATABASE, RESTORED)
    if kind == "mysql":
        base = MYSQL_URL
        dropping = ["DROP USER IF EXISTS '%s'@'%%'" % user for user in users] + [
            "DROP DATABASE IF EXISTS `%s`" % name for name in databases]
        making = ["CREATE DATABASE `%s` CHARACTER SET utf8mb4" % name for name in databases] + [
            "CREATE USER '%s'@'%%' IDENTIFIED BY 'pw-%s'" % (user, user) for user in users] + [
            grant.format(database=name, migration=MIGRATION_USER, runtime=RUNTIME_USER)
            for name in databases for grant in MYSQL_GRANTS]
    else:
        base = POSTGRESQL_URL
        dropping = ['DROP DATABASE IF EXISTS "%s"' % name for name in databases] + [
            "DROP ROLE IF EXISTS %s" % user for user in users]
        making = ["CREATE ROLE %s LOGIN PASSWORD 'pw-%s'" % (user, user) for user in users] + [
            'CREATE DATABASE "%s" OWNER %s' % (name, MIGRATION_USER) for name in databases]
    try:
        run_as_superuser(kind, dropping + making)
        if kind == "postgresql":
            for name in databases:
                run_as_superuser(kind, [grant.format(migration=MIGRATION_USER,
                                                     runtime=RUNTIME_USER)
                                        for grant in POSTGRESQL_GRANTS], name)
    except Exception as e:  # no driver, no server, no right to make users: any of them
        unavailable("%s at %s is not available to make users: %s" % (kind, base, e))
    parts = urllib.parse.urlsplit(base)
    host = "%s:%d" % (parts.hostname, parts.port or (3306 if kind == "mysql" else 5432))
    yield lambda user, database=DATABASE: "%s://%s:pw-%s@%s/%s" % (
        parts.scheme, user, user, host, database)
    run_as_superuser(kind, dropping)


def load_as(url, dump):
    """Load ``dump`` into the database of ``url`` as its user, the way docs/deploy.md says."""
    parts = urllib.parse.urlsplit(url)
    address = ["--host=%s" % parts.hostname, "--port=%d" % parts.port]
    if parts.scheme.startswith("mysql"):
        command = ["mysql", "--user=%s" % parts.username, *address, parts.path.strip("/")]
        environ = dict(os.environ, MYSQL_PWD=parts.password)
    else:
        command = ["psql", "--no-password", "--quiet", "--username=%s" % parts.username,
                   *address, "--dbname=%s" % parts.path.strip("/"), "--set=ON_ERROR_STOP=1",
                   "--file=%s" % dump]
        environ = dict(os.environ, PGPASSWORD=parts.password)
    with open(dump, "rb") as source:
        result = subprocess.run(command, stdin=source, capture_output=True, env=environ,
                                timeout=300)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("restricted", ["mysql", "postgresql"], indirect=True)
def test_the_server_runs_with_only_row_rights_once_migrated(tmp_path, restricted):
    """The runtime user cannot create the tables (proof that it has no schema right), the
    migration user can; then the runtime user's server runs, logs, stores and deletes jobs;
    ``jobjoker backup`` dumps the database as that user; the dump, loaded by the migration user
    into a new database, serves the runtime user again."""
    runtime = restricted(RUNTIME_USER)
    refused = ServerProcess(tmp_path, "--database", runtime)
    try:
        assert refused.process.wait(timeout=120) == 1
        assert re.search("CREATE command denied|permission denied for schema public",
                         refused.stderr), refused.stderr
        assert "pw-" not in refused.stderr
    finally:
        refused.discard()
    migrating = ServerProcess(tmp_path, "--database", restricted(MIGRATION_USER))
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
        kept = server.create_job("TestWorker", {"count": 1, "sleep": 0})
        assert server.call("DELETE", "/jobs/%s" % job["id"]).code == 200
        environ = {k: v for k, v in os.environ.items() if not k.startswith("JOBJOKER_")}
        backup = subprocess.run(
            [sys.executable, "-m", "jobjoker.cli", "backup", str(tmp_path / "backup"),
             "--data-dir", str(server.data_dir), "--database", runtime],
            capture_output=True, text=True, timeout=300, env=environ, cwd=ROOT)
        assert backup.returncode == 0, backup.stderr
        assert server.wait_for_job(kept["id"])["status"] == "done"
        assert server.stop() == 0
    finally:
        server.discard()
    load_as(restricted(MIGRATION_USER, RESTORED), tmp_path / "backup" / "database.sql")
    restored = ServerProcess(tmp_path, "--database", restricted(RUNTIME_USER, RESTORED),
                             data_dir=tmp_path / "backup")
    try:
        restored.wait_ready()
        assert [j["id"] for j in restored.api("GET", "/jobs")] == [kept["id"]]
        assert restored.create_job("TestWorker", {"count": 1, "sleep": 0})["status"] == "active"
    finally:
        restored.discard()
