"""Users, password hashing and request authentication.

Contract: passwords are hashed with scrypt (memory-hard; ``hash_password``/``verify_password``),
never stored in clear. ``Authenticator.authenticate(header)`` takes an ``Authorization`` header
value and returns the ``Identity`` it proves, or None; the scrypt work runs in an executor, never on
the IOLoop, and a successful check is remembered (keyed by a digest of the stored hash and the
password, so a password change invalidates it) so HTTP Basic on every request costs a dict lookup.
An unknown user and a wrong password take the same path and the same time. ``ensure_admin``
creates the first user at start-up. Tokens, sessions and roles plug in here (see the security
issue); the Identity already carries a role.
"""
import asyncio
import base64
import binascii
import collections
import dataclasses
import hashlib
import hmac
import logging
import secrets

from jobjoker import models

log = logging.getLogger(__name__)

# OWASP's scrypt settings (N=2^15, r=8, p=3): ~32 MiB and a fraction of a second per hash.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 3
SCRYPT_MAXMEM = 64 * 1024 * 1024
_VERIFIED_MAX = 1024


def hash_password(password):
    """``scrypt$n$r$p$salt$hash`` (salt and hash in base64); the cost travels with the hash."""
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM)
    return "scrypt$%d$%d$%d$%s$%s" % (n, r, p, base64.b64encode(salt).decode(),
                                      base64.b64encode(digest).decode())


def verify_password(password, stored):
    """True when ``password`` matches the ``stored`` hash (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                                r=int(r), p=int(p), maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check against when the user does not exist, so that case costs the same time.
_DUMMY_HASH = None


def _dummy_hash():
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


def _check_password(password, stored):
    # Runs in the executor. An unknown user is checked against a dummy hash: same cost.
    return verify_password(password, stored or _dummy_hash()) and stored is not None


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who made a request, and with what rights."""

    username: str
    role: str
    scheme: str  # "basic" now; "bearer" and "session" later


def parse_basic(header):
    """(username, password) from a Basic ``Authorization`` header value, or None."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class Authenticator:
    """Checks credentials against the users table."""

    def __init__(self):
        self._verified = collections.OrderedDict()  # digest -> True, most recent last

    @staticmethod
    def _cache_key(stored_hash, password):
        return hashlib.sha256(("%s\0%s" % (stored_hash, password)).encode()).digest()

    async def authenticate(self, header):
        """The Identity that the ``Authorization`` header value proves, or None."""
        credentials = parse_basic(header)
        if credentials is None:
            return None
        username, password = credentials
        user = models.User.get_or_none(models.User.username == username)
        stored = user.password_hash if user is not None and not user.disabled else None
        key = self._cache_key(stored, password) if stored else None
        if key is not None and key in self._verified:
            self._verified.move_to_end(key)
            return Identity(user.username, user.role, "basic")
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, _check_password, password, stored)
        if not ok or stored is None:
            return None
        self._verified[key] = True
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return Identity(user.username, user.role, "basic")


def ensure_admin(password=None):
    """Create user ``admin`` when there is no user at all.

    Returns ``(password, generated)`` when it created one, None when users already exist.
    """
    if models.User.select().exists():
        return None
    generated = not password
    password = password or secrets.token_urlsafe(12)
    models.User.create(username="admin", password_hash=hash_password(password), role="admin")
    return password, generated
