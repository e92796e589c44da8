"""Authentication: passwords, API tokens, browser sessions, roles, and login throttling.

Contract: ``Authenticator(storage).authenticate(credentials)`` returns the ``Identity`` (user,
role, scheme) that a request's credentials prove, or None, trying in turn ``Authorization:
Bearer`` (an API token), ``Authorization: Basic`` (a password) and the session cookie; it reads
through the storage's reader threads. It raises ``Throttled`` (429 with ``Retry-After``) while
an account or an address has failed too often. ``create_session``, ``revoke_session`` and
``create_admin`` run within a write transaction; ``ensure_admin`` makes the first admin.
Passwords are hashed with scrypt (memory-hard), always in an executor, never on the IOLoop; a
verified password is remembered by a digest of (stored hash, password), so Basic on every
request costs a dict lookup and a password change invalidates it. An unknown user and a wrong
password take the same path and the same time. Tokens and session cookies carry 256 random bits:
only their SHA-256 is stored, so a leaked database reveals none. Roles are ordered
``viewer < operator < admin``; ``allows(role, permission)`` is the one place that says what each
may do, and a token's role is never above its owner's.
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
import time

from jobjoker import models
from jobjoker.errors import TooManyRequests
from jobjoker.roles import allows, lower_role

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


SESSION_COOKIE = "jobjoker_session"
TOKEN_PREFIX = "jj_"
TOUCH_SECONDS = 60  # how stale last_used/last_seen may get: not a write on every request


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who made a request, and with what rights."""

    username: str
    role: str
    scheme: str  # "basic", "bearer" or "session"
    credential_id: str = None  # the token's id or the session's id, for revoking it

    def may(self, permission):
        return allows(self.role, permission)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What a request brings to prove who it is."""

    authorization: str = None
    session_cookie: str = None
    address: str = None


class Throttled(TooManyRequests):
    """Too many failed logins for an account or an address; retry after ``retry_after`` s.

    A domain error: wherever a password is checked, it becomes a 429 with Retry-After.
    """

    def __init__(self, retry_after):
        super().__init__("too many failed logins from this account or address; try again in "
                         "%d s" % retry_after, retry_after)


class Throttle:
    """Counts failed logins per account and per address in a sliding window."""

    def __init__(self, per_account=10, per_address=50, window=300.0, clock=time.monotonic):
        self.limits = {"account": per_account, "address": per_address}
        self.window = window
        self.clock = clock
        self._failures = collections.defaultdict(collections.deque)  # (kind, key) -> times

    def _recent(self, kind, key):
        times = self._failures.get((kind, key))
        if not times:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._failures[(kind, key)]
        return times

    def check(self, account, address):
        """Raise ``Throttled`` while either the account or the address is over its limit."""
        for kind, key in (("account", account), ("address", address)):
            times = self._recent(kind, key) if key else None
            if times and len(times) >= self.limits[kind]:
                raise Throttled(max(1, int(times[0] + self.window - self.clock()) + 1))

    def fail(self, account, address):
        now = self.clock()
        for kind, key in (("account", account), ("address", address)):
            if key:
                self._failures[(kind, key)].append(now)

    def succeed(self, account):
        self._failures.pop(("account", account), None)


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


def parse_bearer(header):
    """(token id, secret) from a Bearer ``Authorization`` header value, or None."""
    if not header or not header[:7].lower() == "bearer ":
        return None
    token = header[7:].strip()
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    return (token_id, secret) if sep and token_id and secret else None


def active_user(username):
    """The user row if it exists and is not disabled, else None (storage thread)."""
    user = models.User.get_or_none(models.User.username == username)
    return user if user is not None and not user.disabled else None


def _token_and_user(token_id):
    """(token row, its owner if active) or (None, None) (storage thread)."""
    token = models.Token.get_or_none(models.Token.id == token_id)
    return (token, active_user(token.username)) if token is not None else (None, None)


def _session_and_user(session_id):
    """(session row, its user if active) or (None, None) (storage thread)."""
    session = models.Session.get_or_none(models.Session.id == session_id)
    return (session, active_user(session.username)) if session is not None else (None, None)


def _touch_token(tx, token_id, now):
    models.Token.update(last_used=now).where(models.Token.id == token_id).execute()


def _touch_session(tx, session_id, now):
    models.Session.update(last_seen=now).where(models.Session.id == session_id).execute()


class Authenticator:
    """Turns a request's credentials into an Identity."""

    def __init__(self, storage, throttle=None):
        self.storage = storage
        self.throttle = throttle or Throttle()
        self._verified = collections.OrderedDict()  # digest -> True, most recent last

    @staticmethod
    def _cache_key(stored_hash, password):
        return hashlib.sha256(("%s\0%s" % (stored_hash, password)).encode()).digest()

    async def authenticate(self, credentials):
        """The Identity the credentials prove, or None; ``Throttled`` while locked out."""
        header = credentials.authorization
        if header:
            bearer = parse_bearer(header)
            if bearer is not None:
                return await self._token_identity(*bearer)
            basic = parse_basic(header)
            if basic is None:
                return None
            user = await self.check_password(basic[0], basic[1], credentials.address)
            return Identity(user.username, user.role, "basic") if user else None
        if credentials.session_cookie:
            return await self._session_identity(credentials.session_cookie)
        return None

    async def check_password(self, username, password, address):
        """The active user if the password is right, else None; counts failures, throttles."""
        self.throttle.check(username, address)
        user = await self.storage.read(active_user, username)
        stored = user.password_hash if user is not None else None
        key = self._cache_key(stored, password) if stored else None
        if key is not None and key in self._verified:
            self._verified.move_to_end(key)
            return user
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, _check_password, password, stored)
        if not ok:
            self.throttle.fail(username, address)
            return None
        self.throttle.succeed(username)
        self._verified[key] = True
        if len(self._verified) > _VERIFIED_MAX:
            self._verified.popitem(last=False)
        return user

    async def _token_identity(self, token_id, secret):
        token, user = await self.storage.read(_token_and_user, token_id)
        now = time.time()
        if token is None or token.revoked or (token.expires and token.expires < now):
            return None
        if not hmac.compare_digest(token.secret_hash, digest(secret)):
            return None
        if user is None:
            return None
        if not token.last_used or now - token.last_used > TOUCH_SECONDS:
            await self.storage.transaction(_touch_token, token_id, now)
        return Identity(user.username, lower_role(token.role, user.role), "bearer", token.id)

    async def _session_identity(self, cookie):
        session_id = digest(cookie)
        session, user = await self.storage.read(_session_and_user, session_id)
        now = time.time()
        if session is None or session.revoked or session.expires < now or user is None:
            return None
        if not session.last_seen or now - session.last_seen > TOUCH_SECONDS:
            await self.storage.transaction(_touch_session, session_id, now)
        return Identity(user.username, user.role, "session", session_id)


def create_session(tx, username, lifetime, address=None):
    """A new session for ``username``: returns the cookie value (shown once, stored hashed)."""
    cookie = secrets.token_urlsafe(32)
    models.Session.create(id=digest(cookie), username=username, expires=time.time() + lifetime,
                          address=address)
    return cookie


def revoke_session(tx, session_id):
    models.Session.update(revoked=time.time()).where(models.Session.id == session_id).execute()


def create_admin(tx, password_hash):
    """User ``admin`` with this password hash, if there is no user at all; True if made."""
    if models.User.select().exists():
        return False
    models.User.create(username="admin", password_hash=password_hash, role="admin")
    return True


def _has_users():
    return models.User.select().exists()


async def ensure_admin(storage, password=None):
    """Create user ``admin`` when there is no user at all.

    Returns ``(password, generated)`` when it created one, None when users already exist.
    """
    if await storage.read(_has_users):
        return None
    generated = not password
    password = password or secrets.token_urlsafe(12)
    hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
    if not await storage.transaction(create_admin, hashed):
        return None
    return password, generated
