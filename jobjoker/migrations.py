"""The schema's history: one migration per version, and the runner that applies them.

Contract: ``migrate(db, current_models)`` creates ``current_models`` on a new database and
records ``SCHEMA_VERSION``; on an older database it runs each pending migration in order,
recording each version in ``schema_version``, inside one transaction (MySQL commits each DDL
statement by itself, so there a failed migration is not rolled back).

Each migration creates exactly the schema of its version, whatever the models of today say:
tables it adds are frozen snapshots defined here, as released, and columns and keys go through
``playhouse.migrate``. This module imports nothing of ours; ``jobjoker.models`` hands over its
model list. Append a migration, never edit one once released. The table of versions is in
``docs/architecture.md``.
"""
import logging
import time

import peewee
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as run

log = logging.getLogger(__name__)


class FrozenModel(peewee.Model):
    """A table as one version created it; bound to the migrated database only while in use."""

    class Meta:
        database = None
        legacy_table_names = False


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


# --- the runner ----------------------------------------------------------------------------------

# version -> function(database, migrator). Append, never edit, once released.
MIGRATIONS = {
    2: _add_security_tables,
    3: _add_secret_parameters,
    4: _add_log_cap_and_nodes,
}

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
