"""Statements compiled once: the SQL of the hot paths, built by Peewee once per dialect.

Contract: ``execute(key, build, values)`` runs the query ``build()`` with ``values`` (a dict of
name -> value for each ``param(name)`` in it) and returns the cursor; the SQL text is built the
first time a ``key`` is seen on a kind of database and reused after, the values still bound by
the driver, never formatted in. ``executemany(key, build, rows)`` does the same for many rows of
values. Only the statements that profiling showed need it come here (reading and changing a job
row, inserting chunks and audit entries: the start and end of every job run them several times,
and Peewee takes longer to build such a query than SQLite takes to run it); everything else is
plain Peewee.
"""
import peewee

from jobjoker import models

_compiled = {}  # (database class, key) -> (SQL text, parameter names in order)


def param(name):
    """A named parameter of a query given to ``execute``."""
    return peewee.Value(name, converter=False)


def _sql(key, build):
    cache_key = (type(models.database.obj), key)
    compiled = _compiled.get(cache_key)
    if compiled is None:  # two threads may build it at once: the same text either way
        compiled = _compiled[cache_key] = build().sql()
    return compiled


def execute(key, build, values):
    """Run ``build()`` (compiled once per dialect and ``key``) with ``values``; the cursor."""
    sql, names = _sql(key, build)
    return models.database.execute_sql(sql, [values[name] for name in names])


def executemany(key, build, rows):
    """Run ``build()`` once per dict of ``rows``, in one driver call."""
    sql, names = _sql(key, build)
    cursor = models.database.cursor()
    cursor.executemany(sql, [[row[name] for name in names] for row in rows])
    return cursor
