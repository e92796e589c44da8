"""All persistent models, on one late-bound database.

Contract: ``database`` is a ``DatabaseProxy``; ``open_database(url)`` builds the real database
from a URL (``sqlite:///path`` with WAL, ``mysql://user:pass@host:port/db`` through PyMySQL,
``postgresql://...``), binds the proxy to it, and brings the schema up to date through
``migrate()`` (the migrations themselves live in ``jobjoker.migrations``). On SQLite every
connection enforces foreign keys. Nothing is opened at import time. ``connection_gone(db,
error)`` is the one place that tells a connection the database server or the network took away
(MySQL/MariaDB through PyMySQL, PostgreSQL through psycopg2 or psycopg 3) from other failures,
by asking the driver whether the connection is still open, not by reading messages (a link
gone silent is given up on in bounded time, ``jobjoker.dblink``); the
storage's threads (``jobjoker.dbthreads``) reconnect on it. Models hold data only: the
job store (``jobjoker.jobstore``) owns job rows, the log store (``jobjoker.logstore``) chunks.
A job's log and response are stored as chunks of consecutive entries (see docs/architecture.md).
"""
import time
import urllib.parse

import peewee
from playhouse import db_url

from jobjoker import dblink, migrations
from jobjoker.migrations import SCHEMA_VERSION  # noqa: F401 -- these models' version

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Job(BaseModel):
    """One run of a worker with its parameters."""

    id = peewee.CharField(primary_key=True, max_length=32)
    worker = peewee.CharField(max_length=64)
    status = peewee.CharField(max_length=16)
    parameters = peewee.TextField(default="{}")  # a JSON object, secret values masked
    secret_parameters = peewee.TextField(null=True)  # the secret values; never sent to clients
    node = peewee.CharField(max_length=255, null=True)  # the server that runs it
    pid = peewee.IntegerField(null=True)
    pid_start_time = peewee.BigIntegerField(null=True)  # /proc/PID/stat field 22
    created = peewee.DoubleField()
    starttime = peewee.DoubleField(null=True)
    stoptime = peewee.DoubleField(null=True)
    stop_requested = peewee.DoubleField(null=True)
    stop_deadline = peewee.DoubleField(null=True)  # when a requested stop escalates to SIGKILL
    exit_code = peewee.IntegerField(null=True)
    exit_signal = peewee.IntegerField(null=True)
    error = peewee.TextField(null=True)
    created_by = peewee.CharField(max_length=64, null=True)
    log_count = peewee.BigIntegerField(default=0)
    response_count = peewee.BigIntegerField(default=0)
    # Bytes of each spool file already stored: ingestion resumes here after a restart.
    log_offset = peewee.BigIntegerField(default=0)
    response_offset = peewee.BigIntegerField(default=0)
    # The log cap (``--max-log-bytes``): bytes of log entries stored, and once the log passed
    # its cap, the sequence number of the marker entry that stands for the dropped middle and
    # how many entries the gap after it holds. Entries keep their sequence numbers: the gap is
    # a range of numbers that no longer exist, so readers and followers never shift.
    log_bytes = peewee.BigIntegerField(default=0)
    log_marker_seq = peewee.BigIntegerField(null=True)
    log_dropped = peewee.BigIntegerField(default=0)
    # Grows with every write of the row (jobjoker.jobstore): of two copies of a job, the higher
    # one is newer. The column's own default serves rows written without it.
    revision = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    # The id's last characters (jobjoker.jobstore.short_id_of), as the admin page shows them:
    # indexed, so that short form finds its job without a scan.
    short_id = peewee.CharField(max_length=6, null=True, index=True)
    # Time limit: seconds from the start (the job's, its worker's or the server's default),
    # and when they run out (set at the start: a restarted server still enforces it).
    timeout = peewee.DoubleField(null=True)
    deadline = peewee.DoubleField(null=True)
    stop_reason = peewee.CharField(max_length=16, null=True)  # why the server stopped it
    pause_requested = peewee.DoubleField(null=True)  # a pending pause request (resume clears)
    progress = peewee.DoubleField(null=True)  # 0-1, from self.progress()
    progress_message = peewee.TextField(null=True)
    result_size = peewee.BigIntegerField(null=True)  # bytes of its result (job_data "result")
    rerun_of = peewee.CharField(max_length=32, null=True)  # the job this one runs again
    code_hash = peewee.CharField(max_length=64, null=True)  # the WorkerVersion it ran
    # Resource use of its whole process group: CPU seconds, resident memory now and at peak.
    cpu_seconds = peewee.DoubleField(null=True)
    rss_bytes = peewee.BigIntegerField(null=True)
    max_rss_bytes = peewee.BigIntegerField(null=True)
    # Flow: when a ``scheduled`` job starts; when it joined the queue (the queue's order, with
    # its id); why it ended, for machines (``reason``); the schedule that made it; a retry
    # chain (the job it retries, and its attempt: 1 for a first run) and its retry policy,
    # fixed at its creation (from the job, else its worker).
    start_at = peewee.DoubleField(null=True)
    queued = peewee.DoubleField(null=True)
    reason = peewee.CharField(max_length=16, null=True)
    schedule_id = peewee.CharField(max_length=32, null=True)
    retry_of = peewee.CharField(max_length=32, null=True)
    attempt = peewee.IntegerField(null=True)
    retries = peewee.IntegerField(null=True)
    retry_delay = peewee.DoubleField(null=True)
    retry_backoff = peewee.DoubleField(null=True)
    retry_on_timeout = peewee.BooleanField(null=True)

    class Meta:
        indexes = (
            (("status", "id"), False),
            (("worker", "id"), False),
            (("node", "status"), False),
            (("worker", "code_hash"), False),
            (("status", "queued"), False),
            (("status", "start_at"), False),
            (("schedule_id", "id"), False),
            (("retry_of",), False),
        )


class JobData(BaseModel):
    """A job's larger values, by kind (``result``: its JSON result; ``usage``: its resource
    series), kept out of the job row so lists never read them. Deleted with the job."""

    job = peewee.CharField(max_length=32)
    kind = peewee.CharField(max_length=16)
    value = peewee.TextField()

    class Meta:
        primary_key = peewee.CompositeKey("job", "kind")


class WorkerVersion(BaseModel):
    """One distinct code of a worker (by its content hash), kept while a job refers to it."""

    worker = peewee.CharField(max_length=64)
    hash = peewee.CharField(max_length=64)
    source = peewee.TextField()
    saved = peewee.DoubleField()
    saved_by = peewee.CharField(max_length=64, null=True)  # None: found on disk at a start

    class Meta:
        primary_key = peewee.CompositeKey("worker", "hash")
        indexes = ((("worker", "saved"), False),)


class Setting(BaseModel):
    """A value every server of this database shares (``max_active_jobs``), by name."""

    name = peewee.CharField(primary_key=True, max_length=64)
    value = peewee.TextField(null=True)


class Schedule(BaseModel):
    """A worker run with parameters at the times of a cron expression in a time zone.

    ``owner`` is who its jobs are created by (not a key to ``user``: a deleted owner pauses
    the schedule, it does not vanish). ``missed``: ``skip`` or ``run_once`` (times passed
    while no server ran); ``overlap``: ``skip``, ``queue`` or ``allow`` (a previous job still
    running). ``paused`` is when it was paused (by a user, or by itself: ``paused_reason``);
    ``next_run`` the next time it fires (None while paused)."""

    id = peewee.CharField(primary_key=True, max_length=32)
    name = peewee.CharField(max_length=100, null=True)
    worker = peewee.CharField(max_length=64, index=True)
    parameters = peewee.TextField(default="{}")  # a JSON object, secret values masked
    secret_parameters = peewee.TextField(null=True)  # sealed, like a job's
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


# A schedule shows its last runs with their outcome: retention keeps the jobs of that many of
# each schedule's newest runs, whatever their age.
RUNS_SHOWN = 10


class ScheduleRun(BaseModel):
    """One scheduled time of a schedule, fired or not: the job it made, or why none
    (``outcome``: ``started``, ``queued``, ``skipped``, ``failed``). Unique per time: a time
    never fires twice."""

    id = peewee.AutoField()
    schedule = peewee.CharField(max_length=32)
    scheduled_for = peewee.DoubleField()
    fired = peewee.DoubleField()
    job = peewee.CharField(max_length=32, null=True)
    outcome = peewee.CharField(max_length=16)
    detail = peewee.TextField(null=True)

    class Meta:
        indexes = ((("schedule", "scheduled_for"), True),)


class Webhook(BaseModel):
    """A URL told of job ends: server-wide, for a worker, or for a schedule (``scope`` and
    ``scope_value``), for the final statuses listed (comma-separated). ``secret`` (sealed)
    signs each delivery."""

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


class WebhookDelivery(BaseModel):
    """One job end to tell one webhook (an outbox row, written with the end): its body, and
    its attempts (``state``: ``pending``, ``delivered``, ``failed``)."""

    id = peewee.AutoField()
    hook = peewee.CharField(max_length=16)
    job = peewee.CharField(max_length=32)
    body = peewee.TextField()
    state = peewee.CharField(max_length=16)
    attempts = peewee.IntegerField(default=0)
    next_attempt = peewee.DoubleField(null=True)
    claimed_until = peewee.DoubleField(null=True)  # a server is sending it until then
    last_code = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)
    created = peewee.DoubleField()
    finished = peewee.DoubleField(null=True)

    class Meta:
        indexes = ((("hook", "id"), False), (("state", "next_attempt"), False),
                   (("created",), False))


class Chunk(BaseModel):
    """A block of consecutive entries of one job's log (stream 0) or response (stream 1)."""

    job = peewee.CharField(max_length=32)
    stream = peewee.SmallIntegerField()
    first_seq = peewee.BigIntegerField()
    count = peewee.IntegerField()
    data = peewee.BlobField()

    class Meta:
        primary_key = peewee.CompositeKey("job", "stream", "first_seq")


class User(BaseModel):
    """Someone who may use the server, with a role: viewer, operator or admin."""

    username = peewee.CharField(primary_key=True, max_length=64)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16, default="admin")
    created = peewee.DoubleField(default=time.time)
    disabled = peewee.BooleanField(default=False)


def _owner_key(table):
    """The ``username`` column as a key to the user: deleting the user deletes this row.

    The field is ``user`` (the User, loaded when read) and the column ``username``: the
    attribute ``username`` and ``Model.username`` in queries stay the plain name.
    """
    return peewee.ForeignKeyField(User, field=User.username, column_name="username",
                                  on_delete="CASCADE", backref="+",
                                  constraint_name="fk_%s_username_refs_user" % table)


class Token(BaseModel):
    """An API token for scripts: ``jj_<id>_<secret>``; only a hash of the secret is stored."""

    id = peewee.CharField(primary_key=True, max_length=16)
    user = _owner_key("token")
    name = peewee.CharField(max_length=100)
    secret_hash = peewee.CharField(max_length=64)  # sha256: the secret has 256 bits of entropy
    role = peewee.CharField(max_length=16)  # never above its owner's
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField(null=True)
    last_used = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)


class Session(BaseModel):
    """A browser login: the cookie holds a secret, the table its hash, so it can be revoked."""

    id = peewee.CharField(primary_key=True, max_length=64)  # sha256 of the cookie's secret
    user = _owner_key("session")
    created = peewee.DoubleField(default=time.time)
    expires = peewee.DoubleField()
    last_seen = peewee.DoubleField(null=True)
    revoked = peewee.DoubleField(null=True)
    address = peewee.CharField(max_length=64, null=True)


class AuditEntry(BaseModel):
    """Who did what to which job, worker or user, and who logged in or failed to."""

    id = peewee.AutoField()
    time = peewee.DoubleField(default=time.time, index=True)
    actor = peewee.CharField(max_length=64, null=True)
    action = peewee.CharField(max_length=40)
    target = peewee.CharField(max_length=255, null=True)
    detail = peewee.TextField(null=True)
    address = peewee.CharField(max_length=64, null=True)


class Node(BaseModel):
    """A server holding the lease on a node name of this database.

    One server per node name and database: a second one is refused while the lease is held,
    i.e. while its holder's process is alive (same host) or its heartbeat is recent (another).
    """

    name = peewee.CharField(primary_key=True, max_length=255)
    holder = peewee.CharField(max_length=255)  # host:pid:start-time of the holding process
    host = peewee.CharField(max_length=255)
    boot_id = peewee.CharField(max_length=64, null=True)
    pid = peewee.IntegerField()
    pid_start_time = peewee.BigIntegerField(null=True)
    started = peewee.DoubleField()
    heartbeat = peewee.DoubleField()
    data_dir = peewee.TextField(null=True)


class SchemaVersion(BaseModel):
    """The version of the schema this database holds; migrations move it forward."""

    version = peewee.IntegerField(primary_key=True)
    applied = peewee.DoubleField(default=time.time)


MODELS = [Job, Chunk, JobData, WorkerVersion, User, Token, Session, AuditEntry, Node,
          Setting, Schedule, ScheduleRun, Webhook, WebhookDelivery, SchemaVersion]


class MySQLDatabase(peewee.MySQLDatabase):
    """Peewee's, with the kernel's keepalives set on each new PyMySQL socket (jobjoker.dblink).

    No reconnecting database class (Peewee's ReconnectMixin): the storage's threads reconnect
    for every database alike (jobjoker.dbthreads), only where running work again is harmless.
    """

    def _connect(self):
        connection = super()._connect()
        dblink.tune_socket(getattr(connection, "_sock", None))  # PyMySQL has no setting for it
        return connection


db_url.register_database(MySQLDatabase, "mysql", "mysql+pymysql")

# MySQL's BLOB and TEXT stop at 64 KiB: a chunk, or a parameter set, may be larger.
MYSQL_FIELD_TYPES = {"BLOB": "LONGBLOB", "TEXT": "LONGTEXT"}


def make_database(url):
    """A Peewee database for ``url`` (not yet bound or connected)."""
    scheme = urllib.parse.urlsplit(url).scheme
    # User and password are percent-decoded, so a password may hold / ? # @ (as %2F ...).
    quoting = {"unquote_user": True, "unquote_password": True}
    if scheme.startswith("sqlite"):
        return db_url.connect(url, pragmas={
            "journal_mode": "wal",
            "synchronous": "normal",  # durable across a crash of ours; WAL keeps it consistent
            "busy_timeout": 5000,
            "foreign_keys": 1,
        })
    # A link that goes silent is given up on in bounded time (jobjoker.dblink).
    # An operator's setting in the URL (``?read_timeout=120``) wins over ours.
    given = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    link = {key: value for key, value in dblink.connect_parameters(scheme).items()
            if key not in given}
    if scheme.startswith("mysql"):
        return db_url.connect(url, charset="utf8mb4", field_types=MYSQL_FIELD_TYPES, **quoting,
                              **link)
    return db_url.connect(url, **quoting, **link)


def open_database(url):
    """Bind the proxy to the database at ``url`` and bring its schema up to date."""
    db = make_database(url)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    migrate(db)
    return db


def migrate(db):
    """Create the tables on a new database; apply pending migrations on an older one (DDL on a
    big table may take minutes: its replies are waited for without the silent-link bound)."""
    with dblink.unhurried(db):
        migrations.migrate(db, MODELS)


def connection_lost(db):
    """Whether this thread's connection is open for Peewee but closed by its driver (the server
    or the network ended it): PyMySQL's ``open`` turns False, psycopg2's ``closed`` nonzero,
    psycopg 3's ``closed`` True. SQLite's connections are never taken away."""
    if db.is_closed():
        return False
    connection = db.connection()
    closed = getattr(connection, "closed", None)
    if isinstance(closed, (bool, int)):
        return bool(closed)
    return getattr(connection, "open", True) is False


# MySQL's "server has gone away", "lost connection during query", and MySQL 8's "disconnected
# for inactivity" (4031), which comes as a reply on a socket the driver still thinks open.
MYSQL_GONE = (2006, 2013, 4031)


def connection_gone(db, error):
    """Whether ``error`` left this thread without a usable connection: it could not connect,
    or the driver closed the connection it had, or MySQL said it had closed it. A statement
    refused on a live connection (a lock, a full disk, a bad query) is not that."""
    if connection_lost(db):
        return True
    if not isinstance(error, (peewee.OperationalError, peewee.InterfaceError)):
        return False
    args = error.args[0].args if error.args and isinstance(error.args[0], Exception) else \
        error.args
    return db.is_closed() or bool(args) and args[0] in MYSQL_GONE and \
        isinstance(db, peewee.MySQLDatabase)


def drop_all(db):
    """Drop every table (tests use it to start each test from nothing)."""
    with db.bind_ctx(MODELS):
        db.drop_tables(MODELS, safe=True)
