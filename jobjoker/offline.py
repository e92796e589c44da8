"""The server's database opened by a command of its machine (``reset-admin``, ``prune``).

Contract: ``async with server_storage(config) as storage`` opens the database of ``config``
(the server's options: the same ``--config``, ``--data-dir`` or ``--database``) on a ``Storage``
of its own, refuses one whose schema is not this version's (the server migrates, a command never
does: it may run with a user that has row rights only), and closes it after. Every refusal is a
``StartupError`` saying what to fix. Such a command works whether the server runs or not.
"""
import contextlib

from jobjoker import models
from jobjoker.database_url import redact_url
from jobjoker.errors import StartupError
from jobjoker.events import EventHub
from jobjoker.migrations import SCHEMA_VERSION, schema_version
from jobjoker.storage import Storage


@contextlib.asynccontextmanager
async def server_storage(config):
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
        yield storage
    finally:
        await storage.close()
        models.database.initialize(None)


def _schema_version(database):
    database.connect(reuse_if_open=True)
    return schema_version(database)  # None for a database without tables
