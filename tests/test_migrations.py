"""Schema migrations: databases as versions 1 and 4 were released, brought to today's schema.

The old databases are built here from snapshots of the models as those versions shipped them
(never from today's models, which follow the current version). Each test runs on SQLite, on
MySQL/MariaDB and on PostgreSQL, at ``JOBJOKER_TEST_POSTGRESQL_URL`` (default: ``postgres`` on
127.0.0.1:5432, no password); locally a missing one skips those runs, with ``CI=true`` it fails
them (``tests.support.unavailable``).
"""
import os
import threading
import time
import urllib.parse

import peewee
import pytest
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run_operations

from jobjoker import jobstore, migrations, models
from tests.conftest import MYSQL_URL
from tests.support import POSTGRESQL_URL, postgresql_admin, unavailable



# --- the databases -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgresql_url():
    """A PostgreSQL database of this test session's own, or the reason there is none."""
    parts = urllib.parse.urlsplit(POSTGRESQL_URL)
    url = urllib.parse.urlunsplit(parts._replace(path="/jobjoker_test_%d" % os.getpid()))
    try:
        postgresql_admin(url, 'DROP DATABASE IF EXISTS "%s"')
        postgresql_admin(url, 'CREATE DATABASE "%s"')
    except Exception as e:  # no driver, no server, no right: any of them means "skip"
        yield None, "%s: %s" % (type(e).__name__, e)
        return
    yield url, None
    postgresql_admin(url, 'DROP DATABASE IF EXISTS "%s"')


def drop_every_table(db):
    """Empty the database: today's tables (children first), then whatever else is left."""
    models.drop_all(db)
    for table in db.get_tables():
        db.execute_sql("DROP TABLE %s" % db.quote(table))


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql), "postgresql"])
def url(request, tmp_path):
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        return "sqlite:///%s" % (tmp_path / "test.sqlite3")
    found, problem = request.getfixturevalue("%s_url" % request.param)
    if problem:
        where = MYSQL_URL if request.param == "mysql" else POSTGRESQL_URL
        unavailable("%s at %s is not available: %s" % (request.param, where, problem))
    db = models.make_database(found)
    with db:
        drop_every_table(db)
    return found


@pytest.fixture
def connect(url):
    """``connect(current=False)``: a connection to the database at ``url``, closed after the
    test; with ``current=True`` the server's own (``models.open_database``: bound, migrated)."""
    opened = []

    def make(current=False):
        if current:
            db = models.open_database(url)
        else:
            db = models.make_database(url)
            db.connect()
        opened.append(db)
        return db
    yield make
    for db in opened:
        db.close()
    models.database.initialize(None)


# --- the schemas as released ---------------------------------------------------------------------

class Released(peewee.Model):
    class Meta:
        database = None
        legacy_table_names = False


class JobV1(Released):
    id = peewee.CharField(primary_key=True, max_length=32)
    worker = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16)
    parameters = peewee.TextField(default="{}")
    node = peewee.CharField(max_length=255, null=True)
    pid = peewee.IntegerField(null=True)
    pid_start_time = peewee.BigIntegerField(null=True)
    created = peewee.DoubleField()
    starttime = peewee.DoubleField(null=True)
    stoptime = peewee.DoubleField(null=True)
    stop_requested = peewee.DoubleField(null=True)
    stop_deadline = peewee.DoubleField(null=True)
    exit_code = peewee.IntegerField(null=True)
    exit_signal = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    created_by = peewee.CharField(max_length=64, null=True)
    log_count = peewee.BigIntegerField(default=0)
    response_count = peewee.BigIntegerField(default=0)
    log_offset = peewee.BigIntegerField(default=0)
    response_offset = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "job"
        indexes = (
            (("status", "id"), False),
            (("worker", "id"), False),
            (("node", "status"), False),
        )


class JobV4(JobV1):
    secret_parameters = peewee.TextField(null=True)
    log_bytes = peewee.BigIntegerField(default=0)
    log_marker_seq = peewee.BigIntegerField(null=True)
    log_dropped = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "job"


class ChunkV1(Released):
    job = peewee.CharField(max_length=32)
    stream = peewee.SmallIntegerField()
    first_seq = peewee.BigIntegerField()
    count = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        table_name = "chunk"
        primary_key = peewee.CompositeKey("job", "stream", "first_seq")


class UserV1(Released):
    username = peewee.CharField(primary_key=True, max_length=64)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16, default="admin")
    created = peewee.DoubleField(default=time.time)
    disabled = peewee.BooleanField(default=False)

    class Meta:
        table_name = "user"


class SchemaVersionV1(Released):
    version = peewee.IntegerField(primary_key=True)
    applied = peewee.DoubleField(default=time.time)

    class Meta:
        table_name = "schema_version"


class TokenV2(Released):
    id = peewee.CharField(primary_key=True, max_length=16)
    username = peewee.CharField(max_length=64, index=True)
    name = peewee.CharField(max_length=100)
    secret_hash = peewee.CharField(max_length=64)
    role = peewee.CharField(max_length=16)
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField(null=True)
    last_used = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)

    class Meta:
        table_name = "token"


class SessionV2(Released):
    id = peewee.CharField(primary_key=True, max_length=64)
    username = peewee.CharField(max_length=64, index=True)
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField()
    last_seen = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)
    address = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "session"


class AuditEntryV2(Released):
    id = peewee.AutoField()
    time = peewee.DoubleField(default=time.time, index=True)
    actor = peewee.CharField(max_length=64, null=True)
    action = peewee.CharField(max_length=40)
    target = peewee.CharField(max_length=255, null=True)
    detail = peewee.TextField(null=True)
    address = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "audit_entry"


class NodeV4(Released):
    name = peewee.CharField(primary_key=True, max_length=255)
    holder = peewee.CharField(max_length=255)
    host = peewee.CharField(max_length=255)
    boot_id = peewee.CharField(max_length=64, null=True)
    pid = peewee.IntegerField()
    pid_start_time = peewee.BigIntegerField(null=True)
    started = peewee.DoubleField()
    heartbeat = peewee.DoubleField()
    data_dir = peewee.TextField(null=True)

    class Meta:
        table_name = "node"


RELEASED = {
    1: [JobV1, ChunkV1, UserV1, SchemaVersionV1],
    4: [JobV4, ChunkV1, UserV1, TokenV2, SessionV2, AuditEntryV2, NodeV4, SchemaVersionV1],
}

# A chunk over MySQL's 64 KiB BLOB, with every byte value in it.
BIG_BLOCK = bytes(range(256)) * 300


def build_released(db, version):
    """Create the schema of ``version`` as that release did on a new database, and fill it:
    returns the rows written, per table, as ``{table: {primary key: row}}``."""
    tables = RELEASED[version]
    written = {}

    def add(model, **row):
        model.insert(**row).execute()
        key = model._meta.primary_key
        fields = key.field_names if isinstance(key, peewee.CompositeKey) else [key.name]
        written.setdefault(model._meta.table_name, {})[tuple(row[f] for f in fields)] = row

    with db.bind_ctx(tables):
        db.create_tables(tables)
        SchemaVersionV1.create(version=version)
        job = JobV4 if version == 4 else JobV1
        for username, role in (("ann", "admin"), ("bob", "viewer")):
            add(UserV1, username=username, password_hash="scrypt$%s" % username, role=role,
                created=1700000000.5, disabled=role == "viewer")
        add(job, id="j1", worker="Foobar", status="done", parameters='{"n": 1}', node="n1",
            pid=4242, pid_start_time=123456789012, created=1700000001.25, starttime=1700000002.0,
            stoptime=1700000003.0, exit_code=0, created_by="ann", log_count=3,
            response_count=1, log_offset=300, response_offset=20,
            **({"secret_parameters": '{"key": "s3cr3t"}', "log_bytes": 77000,
                "log_dropped": 0} if version == 4 else {}))
        add(job, id="j2", worker="Other", status="idle", created=1700000004.0)
        add(ChunkV1, job="j1", stream=0, first_seq=0, count=2, data=BIG_BLOCK)
        add(ChunkV1, job="j1", stream=0, first_seq=2, count=1, data=b"x\tline\n")
        add(ChunkV1, job="j1", stream=1, first_seq=0, count=1, data=b"\x00\xff")
        if version >= 2:
            for owner in ("ann", "bob", "gone"):  # "gone": a user deleted by hand since
                add(TokenV2, id="t-%s" % owner, username=owner, name="nightly", role="viewer",
                    secret_hash="h" * 64, created=1700000005.0, expires=1800000000.0)
                add(SessionV2, id=("s-%s" % owner).ljust(64, "0"), username=owner,
                    created=1700000006.0, expires=1800000000.0, address="127.0.0.1")
            add(AuditEntryV2, id=1, time=1700000007.0, actor="ann", action="user.create",
                target="bob", detail="role viewer", address="127.0.0.1")
        if version >= 4:
            add(NodeV4, name="n1", holder="host:1:2", host="host", pid=1, pid_start_time=2,
                started=1700000008.0, heartbeat=1700000009.0, data_dir="/data")
    return written


def rows_of(db, table):
    """Every row of ``table`` as ``{primary key: row}``, through a plain ``peewee.Table``."""
    names = [column.name for column in db.get_columns(table)]
    key = db.get_primary_keys(table)
    result = {}
    for row in peewee.Table(table, names).bind(db).select().dicts():
        row = {name: bytes(value) if isinstance(value, memoryview) else value
               for name, value in row.items()}
        result[tuple(row[name] for name in key)] = row
    return result


def schema_of(db):
    """Every table's columns, indexes and foreign keys, as the database reports them."""
    schema = {}
    for table in sorted(db.get_tables()):
        schema[table] = {
            "columns": sorted(column._replace(table=None) for column in db.get_columns(table)),
            "indexes": sorted(index._replace(table=None) for index in db.get_indexes(table)),
            "foreign_keys": sorted(key._replace(table=None)
                                   for key in db.get_foreign_keys(table)),
        }
    if isinstance(db, peewee.SqliteDatabase):
        # SQLite keeps each table's DDL as text; the rebuilt tables must read as new ones.
        # (``job`` differs in its columns' order only: ALTER TABLE appends.)
        for table in ("token", "session"):
            schema[table]["sql"] = db.execute_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    return schema


@pytest.fixture
def new_schema(connect):
    """The schema that a new database gets today, read from one (which is then dropped)."""
    db = connect()
    models.migrate(db)
    schema = schema_of(db)
    drop_every_table(db)
    return schema


def versions_of(db):
    return sorted(version for version, in db.execute_sql("SELECT version FROM schema_version"))


# --- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 4])
def test_a_released_database_is_migrated_to_the_new_schema(url, connect, new_schema, version):
    written = build_released(connect(), version)

    db = connect(current=True)
    assert versions_of(db) == list(range(version, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema
    for table, rows in written.items():
        stored = rows_of(db, table)
        if table == "token" or table == "session":  # those of a deleted user are gone
            rows = {key: row for key, row in rows.items() if row["username"] != "gone"}
        assert stored.keys() == rows.keys(), table
        for key, row in rows.items():
            assert {name: stored[key][name] for name in row} == row, (table, key)
    assert [job.revision for job in models.Job.select()] == [0, 0]
    assert models.Job.get_by_id("j2").log_bytes == 0
    block = models.Chunk.get(models.Chunk.first_seq == 0, models.Chunk.stream == 0).data
    assert bytes(block) == BIG_BLOCK  # psycopg2 reads a BYTEA as a memoryview


@pytest.mark.parametrize("version", [1, 4])
def test_deleting_a_user_deletes_their_tokens_and_sessions(url, connect, version):
    build_released(connect(), version)
    db = connect(current=True)
    for owner in ("ann", "bob"):
        models.Token.insert(id="new-%s" % owner, username=owner, name="n", role="viewer",
                            secret_hash="h").execute()
        models.Session.insert(id="new-%s" % owner, username=owner,
                              expires=time.time() + 60).execute()

    models.User.delete().where(models.User.username == "bob").execute()

    assert {t.username for t in models.Token.select()} == {"ann"}
    assert {s.username for s in models.Session.select()} == {"ann"}
    with pytest.raises(peewee.IntegrityError), db.atomic():
        models.Token.insert(id="orphan", username="bob", name="n", role="viewer",
                            secret_hash="h").execute()


def test_migrating_twice_changes_nothing(url, connect):
    build_released(connect(), 4)
    db = connect(current=True)
    before = schema_of(db), {table: rows_of(db, table) for table in db.get_tables()}

    models.migrate(db)

    assert (schema_of(db), {table: rows_of(db, table) for table in db.get_tables()}) == before
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))


def test_a_half_applied_version_5_is_finished(url, connect, new_schema):
    """MySQL commits each DDL statement by itself: after a failure halfway through version 5,
    running it again skips what was done and does the rest."""
    old = connect()
    build_released(old, 4)
    migrator = SchemaMigrator.from_database(old)
    done = [migrator.add_column("job", "revision", peewee.BigIntegerField(
        default=0, constraints=[peewee.SQL("DEFAULT 0")]), allow_not_null=True)]
    if not isinstance(old, peewee.SqliteDatabase):  # SQLite's step is one transaction
        done.append(migrator.add_foreign_key_constraint(
            "token", "username", "user", "username", on_delete="CASCADE",
            constraint_name="fk_token_username_refs_user"))
    with old.bind_ctx([TokenV2]):
        TokenV2.delete().where(TokenV2.username == "gone").execute()
    run_operations(*done)

    db = connect(current=True)
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema
    assert sorted(t.id for t in models.Token.select()) == ["t-ann", "t-bob"]
    assert sorted(s.username for s in models.Session.select()) == ["ann", "bob"]


def assert_identifiers_compare_exactly():
    """``ADMIN``, ``Admin``, ``admin `` are not ``admin``; ids neither (the bound database)."""
    assert models.User.get_or_none(models.User.username == "ann").username == "ann"
    for other in ("ANN", "Ann", "ann ", "ann\t"):
        assert models.User.get_or_none(models.User.username == other) is None, other
    assert models.Token.get_or_none(models.Token.username == "ANN") is None
    assert models.Token.get_or_none(models.Token.id == "T-ANN") is None
    assert models.Token.get_or_none(models.Token.id == "t-ann ") is None
    assert models.Job.get_or_none(models.Job.id == "J1") is None
    assert models.Job.get_or_none(models.Job.id == "j1 ") is None
    assert models.Job.select().where(models.Job.worker == "foobar").count() == 0
    assert models.Node.get_or_none(models.Node.name == "N1") is None
    assert models.Job.get_by_id("j1").worker == "Foobar"


def test_identifiers_compare_exactly_on_a_migrated_database(url, connect):
    build_released(connect(), 4)
    connect(current=True)
    assert_identifiers_compare_exactly()


def test_identifiers_compare_exactly_on_a_new_database(url, connect):
    connect(current=True)
    models.User.create(username="ann", password_hash="x", role="admin")
    models.Token.create(id="t-ann", username="ann", name="n", secret_hash="h", role="viewer")
    models.Job.create(id="j1", worker="Foobar", status="idle", created=1.0)
    models.Node.create(name="n1", holder="h", host="h", pid=1, started=1.0, heartbeat=1.0)
    assert_identifiers_compare_exactly()


def test_a_half_applied_version_6_is_finished(url, connect, new_schema):
    """MySQL commits each DDL statement by itself: after a failure halfway through version 6
    (keys dropped, one column changed), running it again does the rest."""
    db = connect()
    if not isinstance(db, peewee.MySQLDatabase):
        pytest.skip("version 6 changes nothing on %s" % type(db).__name__)
    build_released(db, 4)
    models.migrate(db)
    migrator = SchemaMigrator.from_database(db)
    run_operations(migrator.drop_foreign_key_constraint("token", "username"),
                   migrator.drop_foreign_key_constraint("session", "username"),
                   migrator.alter_column_type("user", "username", peewee.CharField(
                       max_length=64, collation="utf8mb4_general_ci")))
    db.execute_sql("DELETE FROM schema_version WHERE version >= 6")  # failed in 6: none after

    connect(current=True)
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema
    assert_identifiers_compare_exactly()


def test_an_older_database_is_migrated(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "old.sqlite3")
    old = models.make_database(url)
    with old:
        build_released(old, 1)  # version 1: no secret_parameters (3) nor log-cap columns (4)
    db = models.open_database(url)
    try:
        assert db.table_exists("token") and db.table_exists("session")
        assert db.table_exists("audit_entry")
        columns = [c.name for c in db.get_columns("job")]
        assert "secret_parameters" in columns and "log_dropped" in columns
        assert "revision" in columns
        assert db.table_exists("node")
        assert models.User.get_by_id("ann").role == "admin"
        assert models.SchemaVersion.select(peewee.fn.MAX(models.SchemaVersion.version)
                                           ).scalar() == models.SCHEMA_VERSION
    finally:
        db.close()
        models.database.initialize(None)


def test_every_sqlite_connection_enforces_foreign_keys(tmp_path):
    """The pragma is per connection: each thread's connection, and a reopened one, has it."""
    url = "sqlite:///%s" % (tmp_path / "keys.sqlite3")
    db = models.open_database(url)
    try:
        seen = [db.pragma("foreign_keys")]

        def in_a_thread():
            seen.append(db.pragma("foreign_keys"))  # a connection of this thread's own
            db.close()
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        db.close()
        db.connect()
        seen.append(db.pragma("foreign_keys"))
        assert seen == [1, 1, 1]
        with pytest.raises(peewee.IntegrityError):
            models.Session.insert(id="s", username="nobody", expires=0).execute()
    finally:
        db.close()
        models.database.initialize(None)


LONG_ID = "01m8rtezv60hs6kq8t9t"  # as jobstore.new_job_id makes them


def test_version_7_gives_every_job_its_short_id(url, connect, new_schema):
    old = connect()
    build_released(old, 4)
    with old.bind_ctx([JobV4]):
        JobV4.insert(id=LONG_ID, worker="Foobar", status="idle", created=1700000010.0).execute()

    db = connect(current=True)
    assert schema_of(db) == new_schema
    assert {job.id: job.short_id for job in models.Job.select()} == {
        "j1": "j1", "j2": "j2", LONG_ID: "kq8t9t"}  # an id shorter than six is its own
    assert any(index.columns == ["short_id"] for index in db.get_indexes("job"))
    assert jobstore.resolve("kq8t9t") == LONG_ID
    assert models.Job.get_or_none(models.Job.short_id == "KQ8T9T") is None  # exact, on MySQL too


def test_a_half_applied_version_7_is_finished(url, connect, new_schema):
    """The column added, but neither filled nor indexed (MySQL commits each DDL statement by
    itself): running version 7 again does the rest."""
    build_released(connect(), 4)
    db = connect(current=True)
    run_operations(SchemaMigrator.from_database(db).drop_index("job", "job_short_id"))
    models.Job.update(short_id=None).execute()
    db.execute_sql("DELETE FROM schema_version WHERE version >= 7")  # failed in 7: none after

    models.migrate(db)
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema
    assert sorted(job.short_id for job in models.Job.select()) == ["j1", "j2"]


def test_version_8_keeps_every_job_and_gives_it_no_control_yet(url, connect, new_schema):
    """Jobs of before v8 read as jobs without a time limit, progress, result or code version;
    the new tables are there, empty."""
    build_released(connect(), 4)
    db = connect(current=True)
    assert schema_of(db) == new_schema
    job = models.Job.get_by_id("j1")
    assert (job.timeout, job.deadline, job.progress, job.result_size, job.code_hash,
            job.rerun_of, job.cpu_seconds, job.pause_requested) == (None,) * 8
    assert job.status == "done" and job.log_count == 3  # nothing else touched
    assert models.JobData.select().count() == 0 and models.WorkerVersion.select().count() == 0


def test_a_half_applied_version_8_is_finished(url, connect, new_schema):
    """Some of v8's columns added, its tables and index not (MySQL commits each DDL statement
    by itself): running version 8 again does the rest."""
    build_released(connect(), 4)
    db = connect(current=True)
    migrator = SchemaMigrator.from_database(db)
    run_operations(migrator.drop_index("job", "job_worker_code_hash"),
                   migrator.drop_column("job", "max_rss_bytes"),
                   migrator.drop_column("job", "rss_bytes"))
    db.execute_sql("DROP TABLE job_data")
    db.execute_sql("DELETE FROM schema_version WHERE version >= 8")

    models.migrate(db)
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema


def test_version_9_keeps_every_job_and_gives_it_no_flow_yet(url, connect, new_schema):
    """Jobs of before v9 read as jobs never scheduled, queued or retried, with no reason; the
    new tables are there, empty."""
    build_released(connect(), 4)
    db = connect(current=True)
    assert schema_of(db) == new_schema
    job = models.Job.get_by_id("j1")
    assert (job.start_at, job.queued, job.reason, job.schedule_id, job.retry_of, job.attempt,
            job.retries) == (None,) * 7
    assert job.status == "done" and job.log_count == 3
    for model in (models.Setting, models.Schedule, models.ScheduleRun, models.Webhook,
                  models.WebhookDelivery):
        assert model.select().count() == 0


def test_a_half_applied_version_9_is_finished(url, connect, new_schema):
    """Some of v9's columns, tables and indexes there, others not (MySQL commits each DDL
    statement by itself): running version 9 again does the rest."""
    build_released(connect(), 4)
    db = connect(current=True)
    migrator = SchemaMigrator.from_database(db)
    run_operations(migrator.drop_index("job", "job_status_queued"),
                   migrator.drop_column("job", "retry_on_timeout"))
    db.execute_sql("DROP TABLE webhook_delivery")
    db.execute_sql("DELETE FROM schema_version WHERE version >= 9")

    models.migrate(db)
    assert versions_of(db) == list(range(4, migrations.SCHEMA_VERSION + 1))
    assert schema_of(db) == new_schema
