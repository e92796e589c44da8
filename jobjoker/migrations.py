"""The schema's history: one migration per version, and the runner that applies them.

Contract: ``migrate(db, current_models)`` creates ``current_models`` on a new database and
records ``SCHEMA_VERSION``; on an older database it runs each pending migration in order,
recording each version in ``schema_version``, inside one transaction (MySQL commits each DDL
statement by itself, so there a failed migration is not rolled back: v5 can be re-run).

Each migration creates exactly the schema of its version, whatever the models of today say:
tables it adds are frozen snapshots defined here, as released, and columns and keys go through
``playhouse.migrate``. This module imports nothing of ours; ``jobjoker.models`` hands over its
model list. Append a migration, never edit one once released. The table of versions is in
``docs/architecture.md``.
"""
import logging
import time

import peewee
from playhouse.migrate import MySQLMigrator, SchemaMigrator, SqliteMigrator
from playhouse.migrate import migrate as run

log = logging.getLogger(__name__)


class FrozenModel(peewee.Model):
    """A table as one version created it; bound to the migrated database only while in use."""

    class Meta:
        database = None
        legacy_table_names = False


# --- version 1: job, chunk, user, schema_version (created whole, never migrated to) -------------

class UserV1(FrozenModel):
    """``user`` as version 1 made it (unchanged since): the parent of v5's keys."""

    username = peewee.CharField(primary_key=True, max_length=64)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16, default="admin")
    created = peewee.DoubleField(default=time.time)
    disabled = peewee.BooleanField(default=False)

    class Meta:
        table_name = "user"


# --- version 2 -----------------------------------------------------------------------------------

class TokenV2(FrozenModel):
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


class SessionV2(FrozenModel):
    id = peewee.CharField(primary_key=True, max_length=64)
    username = peewee.CharField(max_length=64, index=True)
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField()
    last_seen = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)
    address = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "session"


class AuditEntryV2(FrozenModel):
    id = peewee.AutoField()
    time = peewee.DoubleField(default=time.time, index=True)
    actor = peewee.CharField(max_length=64, null=True)
    action = peewee.CharField(max_length=40)
    target = peewee.CharField(max_length=255, null=True)
    detail = peewee.TextField(null=True)
    address = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "audit_entry"


def _add_security_tables(db, migrator):
    """Schema 2: API tokens, browser sessions and the audit trail."""
    tables = [TokenV2, SessionV2, AuditEntryV2]
    with db.bind_ctx(tables):
        db.create_tables(tables)


# --- version 3 -----------------------------------------------------------------------------------

def _add_secret_parameters(db, migrator):
    """Schema 3: ``job.secret_parameters``, the secret values of a job's parameters."""
    run(migrator.add_column("job", "secret_parameters", peewee.TextField(null=True)))


# --- version 4 -----------------------------------------------------------------------------------

class NodeV4(FrozenModel):
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


def _add_log_cap_and_nodes(db, migrator):
    """Schema 4: the log cap's columns on ``job`` and the ``node`` lease table."""
    run(migrator.add_column("job", "log_bytes", peewee.BigIntegerField(default=0)),
        migrator.add_column("job", "log_marker_seq", peewee.BigIntegerField(null=True)),
        migrator.add_column("job", "log_dropped", peewee.BigIntegerField(default=0)))
    with db.bind_ctx([NodeV4]):
        db.create_tables([NodeV4])


# --- version 5 -----------------------------------------------------------------------------------

def _user_key(table):
    """The key from ``table.username`` to ``user.username`` that v5 adds, as its field."""
    return peewee.ForeignKeyField(UserV1, field=UserV1.username, column_name="username",
                                  on_delete="CASCADE", backref="+",
                                  constraint_name="fk_%s_username_refs_user" % table)


class TokenV5(FrozenModel):
    id = peewee.CharField(primary_key=True, max_length=16)
    user = _user_key("token")
    name = peewee.CharField(max_length=100)
    secret_hash = peewee.CharField(max_length=64)
    role = peewee.CharField(max_length=16)
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField(null=True)
    last_used = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)

    class Meta:
        table_name = "token"


class SessionV5(FrozenModel):
    id = peewee.CharField(primary_key=True, max_length=64)
    user = _user_key("session")
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField()
    last_seen = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)
    address = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "session"


def _add_revision_and_user_keys(db, migrator):
    """Schema 5: ``job.revision``, and tokens and sessions that go with their user.

    - ``job.revision BIGINT NOT NULL DEFAULT 0``: grows with every write of the job row, so
      clients can tell which copy of a job is newer. One ``ADD COLUMN`` on every backend, with
      a default in the column (rows written by an older server still get 0).
    - ``token.username`` and ``session.username`` reference ``user.username`` with
      ``ON DELETE CASCADE``: deleting a user deletes their tokens and sessions in the same
      statement. Tokens and sessions whose user is already gone are deleted first: they could
      not authenticate, they would block the key, and they would come back to life for a new
      user of the same name. MySQL and PostgreSQL add the key with ``ALTER TABLE``; SQLite
      cannot (Peewee's ``SqliteMigrator`` raises), so there the two small tables are rebuilt
      (``_rebuild_sqlite_table``).
    - No key from ``chunk.job`` to ``job``, on purpose. SQLite can only add it by rebuilding
      the whole ``chunk`` table, which holds every job's log (up to 1 GiB each). Measured on
      this machine kind (2 busy cores, 64 KiB chunks, WAL): about 30 s per GiB with the server
      down, the database and its WAL peaking at 4 times the table's size on disk, and the file
      left twice as large until a VACUUM; a few GiB of logs make it minutes. Deleting a job's
      chunks stays explicit, and batched, in the log store.

    Every step is skipped when already done, so the migration can be re-run after failing
    halfway on MySQL, where each DDL statement commits by itself.
    """
    if "revision" not in {column.name for column in db.get_columns("job")}:
        revision = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
        run(migrator.add_column("job", "revision", revision, allow_not_null=True))
    for old, new in ((TokenV2, TokenV5), (SessionV2, SessionV5)):
        table = new._meta.table_name
        if any(key.column == "username" and key.dest_table == "user"
               for key in db.get_foreign_keys(table)):
            continue
        with db.bind_ctx([old, UserV1]):
            old.delete().where(old.username.not_in(UserV1.select(UserV1.username))).execute()
        if isinstance(migrator, SqliteMigrator):
            _rebuild_sqlite_table(db, migrator, old, new)
        else:
            key = new.user
            run(migrator.add_foreign_key_constraint(
                table, key.column_name, "user", "username", on_delete=key.on_delete,
                constraint_name=key.constraint_name))


def _rebuild_sqlite_table(db, migrator, old, new):
    """Give an SQLite table the schema of ``new`` by copying it, in the order SQLite's manual
    gives (https://sqlite.org/lang_altertable.html#otheralter): create the new table under a
    temporary name, copy the rows, drop the old table, rename the new one, then create its
    indexes (index names are unique per database, so they can only come after the drop).
    Runs inside the migration's transaction: a failure leaves the old table as it was."""
    table = new._meta.table_name
    staging = type("Staging" + new.__name__, (new,),
                   {"Meta": type("Meta", (), {"table_name": table + "_rebuild"})})
    columns = [field.column_name for field in new._meta.sorted_fields]
    with db.bind_ctx([old, new, staging]):
        staging._schema.create_table(safe=False)  # the table alone: no index yet
        (staging.insert_from(old.select(*[old._meta.columns[name] for name in columns]),
                             [staging._meta.columns[name] for name in columns])
         .execute())
        run(migrator.drop_table(table), migrator.rename_table(staging._meta.table_name, table))
        new._schema.create_indexes(safe=False)


# --- version 6 -----------------------------------------------------------------------------------

# Every identifier column as v6 left it: (table, column, length, may be null). Names and ids are
# looked up by what a client sends, so they must compare exactly.
IDENTIFIERS_V6 = (
    ("user", "username", 64, False),
    ("token", "id", 16, False), ("token", "username", 64, False),
    ("session", "id", 64, False), ("session", "username", 64, False),
    ("job", "id", 32, False), ("job", "worker", 64, False), ("job", "node", 255, True),
    ("node", "name", 255, False),
)
# Exact comparison on MariaDB (NO PAD: "admin " is not "admin"), then MySQL 8; the last resort,
# utf8mb4_bin, still pads trailing spaces.
EXACT_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin")


def exact_collation(db):
    """The first collation of ``EXACT_COLLATIONS`` this MySQL/MariaDB server has."""
    known = {name for name, in db.execute_sql(
        "SELECT collation_name FROM information_schema.collations WHERE collation_name IN "
        "(%s)" % ", ".join(["%s"] * len(EXACT_COLLATIONS)), EXACT_COLLATIONS)}
    return next(name for name in EXACT_COLLATIONS if name in known)


def _column_collations(db):
    return {(table, column): collation for table, column, collation in db.execute_sql(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns "
        "WHERE table_schema = DATABASE()")}


def _exact_identifiers(db, migrator):
    """Schema 6: identifiers compare exactly, byte for byte, on every database.

    MySQL and MariaDB compared them by the table's default collation (``utf8mb4_general_ci``):
    ``ADMIN``, ``Admin`` and ``admin `` were all ``admin`` (each with its own throttle count),
    an upper-case job id found the job, ``DELETE /jobs/<id>%20`` deleted it. Their columns get
    a binary collation (``exact_collation``); the keys from ``token.username`` and
    ``session.username`` to ``user.username`` are dropped for the change and added again (MariaDB
    refuses to change a column a key uses, even with key checks off). SQLite (``BINARY``) and
    PostgreSQL (deterministic collations) compare exactly already: nothing to do there.
    ``chunk.job`` is left as it is: it is only ever queried with the id of a job row already
    found, and changing it would rebuild the table that holds every log (see version 5).
    A new database gets the same (``migrate`` runs this after creating the tables). Each step is
    skipped when done, so a run that failed halfway is finished by the next.
    """
    if not isinstance(migrator, MySQLMigrator):
        return
    collation = exact_collation(db)
    current = _column_collations(db)
    pending = [(table, column, length, null) for table, column, length, null in IDENTIFIERS_V6
               if current.get((table, column)) != collation]
    keys = (TokenV5.user, SessionV5.user)
    if pending:
        run(*[migrator.drop_foreign_key_constraint(key.model._meta.table_name, key.column_name)
              for key in keys if _has_user_key(db, key.model._meta.table_name)])
        run(*[migrator.alter_column_type(table, column, peewee.CharField(
            max_length=length, null=null, collation=collation))
            for table, column, length, null in pending])
    for key in keys:
        table = key.model._meta.table_name
        if not _has_user_key(db, table):
            run(migrator.add_foreign_key_constraint(
                table, key.column_name, "user", "username", on_delete=key.on_delete,
                constraint_name=key.constraint_name))


def _has_user_key(db, table):
    return any(key.column == "username" and key.dest_table == "user"
               for key in db.get_foreign_keys(table))


# --- version 7 -----------------------------------------------------------------------------------

# ``job.short_id`` as v7 made it: the last characters of the id, which the admin page shows.
SHORT_ID_V7 = ("job", "short_id", 6, True)


def _add_short_ids(db, migrator):
    """Schema 7: ``job.short_id``, indexed, so the short form of an id finds its job(s) without
    scanning the table.

    - ``job.short_id VARCHAR(6) NULL``, indexed (``job_short_id``), with a binary collation on
      MySQL/MariaDB like every identifier since v6 (a new database gets it here too: this runs
      after creating the tables).
    - Every row without one gets the last six characters of its id (the whole id when shorter),
      in one ``UPDATE``: a few seconds for a million jobs, once.

    Each step is skipped when done, so a run that failed halfway on MySQL is finished by the
    next.
    """
    table, column, length, null = SHORT_ID_V7
    field = peewee.CharField(max_length=length, null=null)
    if column not in {c.name for c in db.get_columns(table)}:
        run(migrator.add_column(table, column, field))
    if isinstance(migrator, MySQLMigrator):
        collation = exact_collation(db)
        if _column_collations(db).get((table, column)) != collation:
            run(migrator.alter_column_type(table, column, peewee.CharField(
                max_length=length, null=null, collation=collation)))
    if not any(index.columns == [column] for index in db.get_indexes(table)):
        run(migrator.add_index(table, (column,), False))
    job = peewee.Table(table, ("id", column)).bind(db)
    length_of_id = peewee.fn.LENGTH(job.id)
    job.update({job.short_id: peewee.Case(None, [(
        length_of_id > length, peewee.fn.SUBSTR(job.id, length_of_id - (length - 1)))], job.id)}
    ).where(job.short_id.is_null()).execute()


# --- version 8 -----------------------------------------------------------------------------------

# The columns v8 adds to ``job``, as released: (name, field).
JOB_COLUMNS_V8 = (
    ("timeout", peewee.DoubleField(null=True)),
    ("deadline", peewee.DoubleField(null=True)),
    ("stop_reason", peewee.CharField(max_length=16, null=True)),
    ("pause_requested", peewee.DoubleField(null=True)),
    ("progress", peewee.DoubleField(null=True)),
    ("progress_message", peewee.TextField(null=True)),
    ("result_size", peewee.BigIntegerField(null=True)),
    ("rerun_of", peewee.CharField(max_length=32, null=True)),
    ("code_hash", peewee.CharField(max_length=64, null=True)),
    ("cpu_seconds", peewee.DoubleField(null=True)),
    ("rss_bytes", peewee.BigIntegerField(null=True)),
    ("max_rss_bytes", peewee.BigIntegerField(null=True)),
)
# Identifiers v8 adds, compared exactly on MySQL/MariaDB like those of v6: (table, column,
# length, may be null).
IDENTIFIERS_V8 = (
    ("job", "rerun_of", 32, True), ("job", "code_hash", 64, True),
    ("job_data", "job", 32, False), ("job_data", "kind", 16, False),
    ("worker_version", "worker", 64, False), ("worker_version", "hash", 64, False),
)


class JobDataV8(FrozenModel):
    job = peewee.CharField(max_length=32)
    kind = peewee.CharField(max_length=16)
    value = peewee.TextField()

    class Meta:
        table_name = "job_data"
        primary_key = peewee.CompositeKey("job", "kind")


class WorkerVersionV8(FrozenModel):
    worker = peewee.CharField(max_length=64)
    hash = peewee.CharField(max_length=64)
    source = peewee.TextField()
    saved = peewee.DoubleField()
    saved_by = peewee.CharField(max_length=64, null=True)

    class Meta:
        table_name = "worker_version"
        primary_key = peewee.CompositeKey("worker", "hash")
        indexes = ((("worker", "saved"), False),)


def _add_job_control(db, migrator):
    """Schema 8: what controlling a job needs (time limits, pause, progress, results, re-runs,
    the code each job ran, resource use).

    - On ``job``: ``timeout`` (seconds) and ``deadline`` (when it runs out, set at the start),
      ``stop_reason`` (why the server stopped it: ``timeout``), ``pause_requested``,
      ``progress`` (0-1) and ``progress_message``, ``result_size``, ``rerun_of`` (the job this
      one runs again), ``code_hash`` (the worker code it ran), ``cpu_seconds``, ``rss_bytes``
      and ``max_rss_bytes``; all NULL for older rows. An index on (``worker``, ``code_hash``)
      finds the jobs that still refer to a code version.
    - ``job_data``: a job's larger values by kind (``result``, ``usage``), kept out of the job
      row so that lists never read them; no key to ``job`` (deleted with it, explicitly, like
      its chunks).
    - ``worker_version``: each distinct code of a worker, stored once, with when and by whom
      it was saved.
    - Identifiers among them compare exactly on MySQL/MariaDB (binary collation, as in v6).

    Each step is skipped when done, so a run that failed halfway on MySQL is finished by the
    next.
    """
    present = {column.name for column in db.get_columns("job")}
    adding = [migrator.add_column("job", name, field) for name, field in JOB_COLUMNS_V8
              if name not in present]
    if adding:
        run(*adding)
    with db.bind_ctx([JobDataV8, WorkerVersionV8]):
        db.create_tables([JobDataV8, WorkerVersionV8], safe=True)
    if not any(index.columns == ["worker", "code_hash"] for index in db.get_indexes("job")):
        run(migrator.add_index("job", ("worker", "code_hash"), False))
    if isinstance(migrator, MySQLMigrator):
        collation = exact_collation(db)
        current = _column_collations(db)
        pending = [migrator.alter_column_type(table, column, peewee.CharField(
            max_length=length, null=null, collation=collation))
            for table, column, length, null in IDENTIFIERS_V8
            if current.get((table, column)) != collation]
        if pending:
            run(*pending)


# --- version 9 -----------------------------------------------------------------------------------

# The columns v9 adds to ``job``, as released: (name, field).
JOB_COLUMNS_V9 = (
    ("start_at", peewee.DoubleField(null=True)),
    ("queued", peewee.DoubleField(null=True)),
    ("reason", peewee.CharField(max_length=16, null=True)),
    ("schedule_id", peewee.CharField(max_length=32, null=True)),
    ("retry_of", peewee.CharField(max_length=32, null=True)),
    ("attempt", peewee.IntegerField(null=True)),
    ("retries", peewee.IntegerField(null=True)),
    ("retry_delay", peewee.DoubleField(null=True)),
    ("retry_backoff", peewee.DoubleField(null=True)),
    ("retry_on_timeout", peewee.BooleanField(null=True)),
)
# Identifiers v9 adds, compared exactly on MySQL/MariaDB: (table, column, length, may be null).
IDENTIFIERS_V9 = (
    ("job", "schedule_id", 32, True), ("job", "retry_of", 32, True),
    ("setting", "name", 64, False),
    ("schedule", "id", 32, False), ("schedule", "worker", 64, False),
    ("schedule", "owner", 64, False),
    ("schedule_run", "schedule", 32, False), ("schedule_run", "job", 32, True),
    ("webhook", "id", 16, False), ("webhook", "scope_value", 64, True),
    ("webhook_delivery", "hook", 16, False), ("webhook_delivery", "job", 32, False),
)


class SettingV9(FrozenModel):
    name = peewee.CharField(primary_key=True, max_length=64)
    value = peewee.TextField(null=True)

    class Meta:
        table_name = "setting"


class ScheduleV9(FrozenModel):
    id = peewee.CharField(primary_key=True, max_length=32)
    name = peewee.CharField(max_length=100, null=True)
    worker = peewee.CharField(max_length=64, index=True)
    parameters = peewee.TextField(default="{}")
    secret_parameters = peewee.TextField(null=True)
    timeout = peewee.DoubleField(null=True)
    cron = peewee.CharField(max_length=255)
    timezone = peewee.CharField(max_length=64)
    missed = peewee.CharField(max_length=16)
    overlap = peewee.CharField(max_length=16)
    owner = peewee.CharField(max_length=64)
    paused = peewee.DoubleField(null=True)
    paused_reason = peewee.TextField(null=True)
    next_run = peewee.DoubleField(null=True, index=True)
    last_run = peewee.DoubleField(null=True)
    created = peewee.DoubleField()
    revision = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "schedule"


class ScheduleRunV9(FrozenModel):
    id = peewee.AutoField()
    schedule = peewee.CharField(max_length=32)
    scheduled_for = peewee.DoubleField()
    fired = peewee.DoubleField()
    job = peewee.CharField(max_length=32, null=True)
    outcome = peewee.CharField(max_length=16)
    detail = peewee.TextField(null=True)

    class Meta:
        table_name = "schedule_run"
        indexes = ((("schedule", "scheduled_for"), True),)


class WebhookV9(FrozenModel):
    id = peewee.CharField(primary_key=True, max_length=16)
    url = peewee.TextField()
    scope = peewee.CharField(max_length=16)
    scope_value = peewee.CharField(max_length=64, null=True)
    statuses = peewee.CharField(max_length=64)
    secret = peewee.TextField()
    description = peewee.CharField(max_length=200, null=True)
    created = peewee.DoubleField()
    created_by = peewee.CharField(max_length=64, null=True)
    disabled = peewee.DoubleField(null=True)

    class Meta:
        table_name = "webhook"


class WebhookDeliveryV9(FrozenModel):
    id = peewee.AutoField()
    hook = peewee.CharField(max_length=16)
    job = peewee.CharField(max_length=32)
    body = peewee.TextField()
    state = peewee.CharField(max_length=16)
    attempts = peewee.IntegerField(default=0)
    next_attempt = peewee.DoubleField(null=True)
    claimed_until = peewee.DoubleField(null=True)
    last_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    created = peewee.DoubleField()
    finished = peewee.DoubleField(null=True)

    class Meta:
        table_name = "webhook_delivery"
        indexes = ((("hook", "id"), False), (("state", "next_attempt"), False),
                   (("created",), False))


TABLES_V9 = [SettingV9, ScheduleV9, ScheduleRunV9, WebhookV9, WebhookDeliveryV9]
# Indexes v9 adds to ``job``: (columns, unique).
JOB_INDEXES_V9 = ((("status", "queued"), False), (("status", "start_at"), False),
                  (("schedule_id", "id"), False), (("retry_of",), False))


def _add_scheduling(db, migrator):
    """Schema 9: what scheduling and flow need (delayed starts, schedules, concurrency caps with
    a queue, retries, webhooks on job ends).

    - On ``job``: ``start_at`` (when a ``scheduled`` job starts), ``queued`` (when it joined the
      queue: the queue's order, with the id), ``reason`` (why it ended, for machines),
      ``schedule_id`` (the schedule that made it), ``retry_of`` and ``attempt`` (a retry chain:
      the job it retries, and 1 for a first run), ``retries``, ``retry_delay``,
      ``retry_backoff`` and ``retry_on_timeout`` (its retry policy, fixed at its creation); all
      NULL for older rows. Indexes for the queue, the clock, a schedule's runs and a chain.
    - ``setting``: values shared by every server of the database (``max_active_jobs``).
    - ``schedule`` and ``schedule_run`` (each firing or failure to fire, once per scheduled
      time: a unique key, so a time never fires twice, whatever the servers and restarts).
    - ``webhook`` and ``webhook_delivery`` (an outbox: written with the job's end, sent after).
    - Identifiers among them compare exactly on MySQL/MariaDB (binary collation, as in v6).

    Each step is skipped when done, so a run that failed halfway on MySQL is finished by the
    next.
    """
    present = {column.name for column in db.get_columns("job")}
    adding = [migrator.add_column("job", name, field) for name, field in JOB_COLUMNS_V9
              if name not in present]
    if adding:
        run(*adding)
    with db.bind_ctx(TABLES_V9):
        db.create_tables(TABLES_V9, safe=True)
    indexed = [index.columns for index in db.get_indexes("job")]
    pending = [migrator.add_index("job", columns, unique)
               for columns, unique in JOB_INDEXES_V9 if list(columns) not in indexed]
    if pending:
        run(*pending)
    if isinstance(migrator, MySQLMigrator):
        collation = exact_collation(db)
        current = _column_collations(db)
        pending = [migrator.alter_column_type(table, column, peewee.CharField(
            max_length=length, null=null, collation=collation))
            for table, column, length, null in IDENTIFIERS_V9
            if current.get((table, column)) != collation]
        if pending:
            run(*pending)


# --- the runner ----------------------------------------------------------------------------------

# version -> function(database, migrator). Append, never edit, once released.
MIGRATIONS = {
    2: _add_security_tables,
    3: _add_secret_parameters,
    4: _add_log_cap_and_nodes,
    5: _add_revision_and_user_keys,
    6: _exact_identifiers,
    7: _add_short_ids,
    8: _add_job_control,
    9: _add_scheduling,
}
# Run again after creating the tables of a new database: what models cannot say portably.
ON_CREATE = (_exact_identifiers, _add_short_ids, _add_job_control, _add_scheduling)

SCHEMA_VERSION = max(MIGRATIONS)


def _versions(db):
    return peewee.Table("schema_version", ("version", "applied")).bind(db)


def schema_version(db):
    """The version the database at ``db`` holds, or None when it holds no schema yet."""
    if not db.table_exists("schema_version"):
        return None
    versions = _versions(db)
    return versions.select(peewee.fn.MAX(versions.version)).scalar() or 0


def migrate(db, current_models):
    """Create ``current_models`` on a new database; apply pending migrations on an older one."""
    versions = _versions(db)
    with db.atomic():
        current = schema_version(db)
        if current is None:
            with db.bind_ctx(current_models):
                db.create_tables(current_models)
            for step in ON_CREATE:
                step(db, SchemaMigrator.from_database(db))
            versions.insert(version=SCHEMA_VERSION, applied=time.time()).execute()
            return
        pending = sorted(version for version in MIGRATIONS if version > current)
        if pending:
            log.info("migrating the database schema from version %d to %d", current,
                     pending[-1])
        migrator = SchemaMigrator.from_database(db)
        for version in pending:
            MIGRATIONS[version](db, migrator)
            versions.insert(version=version, applied=time.time()).execute()
