"""``jobjoker reset-admin [USERNAME]``: sign-in again when no admin can, on any database.

Contract: ``reset_admin(config, username, password)`` opens the database of ``config`` (the
server's options, ``jobjoker.offline``: one whose schema is not this version's is refused),
and makes ``username`` an active admin with ``password`` through
``accounts.recover_admin``, on a ``Storage`` of its own: one transaction, recorded in the audit
trail. It returns what changed, or raises ``StartupError`` saying what to fix. It works whether
the server runs or not: the server reads users from the database at each sign-in. Running it
needs what the server's own database access needs, so whoever can run it could read the
database anyway: it adds no way in.
"""
import asyncio

from jobjoker import accounts, auth
from jobjoker.audit import AuditLog
from jobjoker.errors import StartupError, ValidationError
from jobjoker.offline import server_storage


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
    async with server_storage(config) as storage:
        return await storage.transaction(accounts.recover_admin, AuditLog(storage), username,
                                         password_hash)
