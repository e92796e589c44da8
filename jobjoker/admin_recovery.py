"""``jobjoker reset-admin [USERNAME]``: sign-in again when no admin can, on any database.

Contract: ``reset_admin(config, username, password)`` opens the database of ``config`` (the
server's options: the same ``--config``, ``--data-dir`` or ``--database``), refuses one whose
schema is not this version's (the server migrates, this command never does: it may run with a
user that has row rights only), and makes ``username`` an active admin with ``password`` through
``accounts.recover_admin``, on a ``Storage`` of its own: one transaction, recorded in the audit
trail. It returns what changed, or raises ``StartupError`` saying what to fix. It works whether
the server runs or not: the server reads users from the database at each sign-in. Running it
needs what the server's own database access needs, so whoever can run it could read the
database anyway: it adds no way in.
"""
import asyncio

from jobjoker import accounts, auth, models
from jobjoker.audit import AuditLog
from jobjoker.database_url import redact_url
from jobjoker.errors import StartupError, ValidationError
from jobjoker.events import EventHub
from jobjoker.migrations import SCHEMA_VERSION, schema_version
from jobjoker.storage import Storage


def reset_admin(config, username, password):
    """Make ``username`` an active admin with ``password``; returns what changed."""
    if not accounts.USERNAME.fullmatch(username or ""):
        raise StartupError("%r is not a valid user name (letters, digits and _ . @ -, "
                           "starting with a letter or digit, at most 64)" % username)
    try:
        accounts.check_password_rule(password)
    except ValidationError as e:
        raise StartupError(e.message)
    return asyncio.run(_reset(config, username, auth.hash_password(password)))


async def _reset(config, username, password_hash):
    url = config.database_url
    try:
        database = models.make_database(url)
    except Exception as e:  # driver errors have no common base
        raise StartupError("cannot open the database %s: %s" % (redact_url(url), e))
    models.database.initialize(database)
    storage = Storage(database, EventHub(), readers=1)
    try:
        try:
            version = await storage.call(_schema_version, database)
        except Exception as e:
            raise StartupError("cannot open the database %s: %s" % (redact_url(url), e))
        if version != SCHEMA_VERSION:
            raise StartupError(
                "the database %s has schema version %s, this version of JobJoker wants %s: "
                "start this version's server once (it migrates the schema), then run this "
                "again" % (redact_url(url), version, SCHEMA_VERSION))
        return await storage.transaction(accounts.recover_admin, AuditLog(storage), username,
                                         password_hash)
    finally:
        await storage.close()
        models.database.initialize(None)


def _schema_version(database):
    database.connect(reuse_if_open=True)
    return schema_version(database)  # None for a database without tables
