"""Authentication: passwords, API tokens, browser sessions and roles.

Contract: ``Authenticator(storage).authenticate(credentials)`` returns the ``Identity`` (user,
role, scheme) that a request's credentials prove, or None, trying in turn ``Authorization:
Bearer`` (an API token), ``Authorization: Basic`` (a password) and the session cookie; it reads
through the storage's reader threads. It raises ``throttle.Throttled`` (429 with
``Retry-After``) while an account or an address has failed too often (``jobjoker.throttle``);
bad tokens and unreadable ``Authorization`` headers count against the address like wrong
passwords, and password checks take turns (``CheckSlots``). ``still_valid`` re-checks the
identities of open sockets. ``create_session``, ``revoke_session`` and
``create_admin`` run within a write transaction; ``ensure_admin`` makes the first admin.
Passwords are hashed with scrypt (memory-hard), always in an executor, never on the IOLoop; a
verified password is remembered by a digest of (stored hash, password), so Basic on every
request costs a dict lookup and a password change invalidates it. An unknown user and a wrong
password take the same path and the same time. Tokens and session cookies carry 256 random bits:
only their SHA-256 is stored, so a leaked database reveals none; a session's XSRF token is an
HMAC keyed by its cookie (``xsrf_token``). Roles are ordered
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
from jobjoker.roles import allows, lower_role
from jobjoker.throttle import CheckSlots, Throttle

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


def xsrf_token(session_cookie):
    """The XSRF token of a browser session: an HMAC keyed by the session cookie's secret.

    Bound to the session, so a token from another session, or a cookie and header pair a
    cross-site page or a sibling subdomain planted, proves nothing; and not stored anywhere (the
    database holds only the cookie's hash, from which the token cannot be computed).
    """
    return hmac.new(session_cookie.encode(), b"jobjoker-xsrf", hashlib.sha256).hexdigest()


def xsrf_matches(session_cookie, sent):
    """Whether ``sent`` (the X-XSRFToken header) is this session's XSRF token."""
    return bool(session_cookie and sent) and hmac.compare_digest(
        sent.encode(), xsrf_token(session_cookie).encode())


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who made a request, and with what rights."""

    username: str
    role: str
    scheme: str  # "basic", "bearer" or "session"
    credential_id: str = None  # the token's id or the session's id, for revoking it
    # Basic: a digest of the password hash it was checked against, so that a long-lived socket
    # can tell when the password changed (``still_valid``). Never compared nor shown.
    proof: str = dataclasses.field(default=None, compare=False, repr=False)

    def may(self, permission):
        return allows(self.role, permission)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What a request brings to prove who it is."""

    authorization: str = None
    session_cookie: str = None
    address: str = None


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


def failed_attempt(header):
    """``(target, detail)`` of the audit entry of a refused ``Authorization`` header: the
    account that Basic credentials tried (as a failed form sign-in names it), else the scheme
    alone ("basic" when undecodable, "bearer", or "other" for junk, so that varied junk folds
    into one entry too)."""
    basic = parse_basic(header)
    if basic is not None:
        return basic[0], "HTTP Basic"
    scheme = header.split(" ", 1)[0].lower()
    return (scheme if scheme in ("basic", "bearer") else "other"), None


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

    def __init__(self, storage, throttle=None, slots=None):
        self.storage = storage
        self.throttle = throttle or Throttle()
        self.slots = slots or CheckSlots()
        self._verified = collections.OrderedDict()  # digest -> True, most recent last
        self._checking = {}  # digest -> future of the check running for it

    @staticmethod
    def _cache_key(stored_hash, password):
        return hashlib.sha256(("%s\0%s" % (stored_hash, password)).encode()).digest()

    async def authenticate(self, credentials):
        """The Identity the credentials prove, or None; ``Throttled`` while locked out."""
        header = credentials.authorization
        if header:
            bearer = parse_bearer(header)
            if bearer is not None:
                return await self._token_identity(*bearer, credentials.address)
            basic = parse_basic(header)
            if basic is None:  # garbage is a failed attempt like any other
                self.throttle.begin(None, credentials.address)
                self.throttle.end(None, credentials.address, False)
                return None
            user = await self.check_password(basic[0], basic[1], credentials.address)
            return Identity(user.username, user.role, "basic",
                            proof=digest(user.password_hash)) if user else None
        if credentials.session_cookie:
            return await self._session_identity(credentials.session_cookie)
        return None

    async def check_password(self, username, password, address):
        """The active user if the password is right, else None; counts failures, throttles."""
        self.throttle.check(username, address)  # locked out: refused before any work
        user = await self.storage.read(active_user, username)
        stored = user.password_hash if user is not None else None
        key = self._cache_key(stored, password) if stored else None
        if key is not None and key in self._verified:
            # Remembered from an earlier check: it settles neither way (a request with a known
            # password does not wipe the account's failures).
            self._verified.move_to_end(key)
            return user
        if key in self._checking:
            # The same password for the same hash is being checked (a client opening many
            # connections at once): share that answer; one guess is one attempt.
            return user if await asyncio.shield(self._checking[key]) else None
        self.throttle.begin(username, address)
        ok = None
        answer = None
        if key is not None:
            answer = self._checking[key] = asyncio.get_running_loop().create_future()
        try:
            async with self.slots.slot(address):
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, _check_password, password, stored)
            if not ok:
                return None
            self._verified[key] = True
            if len(self._verified) > _VERIFIED_MAX:
                self._verified.popitem(last=False)
            return user
        finally:
            self.throttle.end(username, address, ok)
            if answer is not None:
                del self._checking[key]
                answer.set_result(bool(ok))

    async def _token_identity(self, token_id, secret, address):
        # A bad token counts against its address as a wrong password does (not against the
        # token id: anyone could lock out a token whose id they saw in a list).
        self.throttle.begin(None, address)
        ok = None
        try:
            token, user = await self.storage.read(_token_and_user, token_id)
            now = time.time()
            ok = not (token is None or token.revoked or (token.expires and token.expires < now)
                      or not hmac.compare_digest(token.secret_hash, digest(secret))
                      or user is None)
        finally:
            self.throttle.end(None, address, ok)
        if not ok:
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


def still_valid(identities, now=None):
    """For each Identity, whether its credentials still prove it, with the same role: the user
    active, the token or session neither revoked nor expired, a Basic password unchanged.
    Three queries for any number of them (storage thread): open sockets are re-checked so."""
    now = time.time() if now is None else now

    def rows(model, key, values):
        found = {}
        values = sorted(set(v for v in values if v))
        for start in range(0, len(values), 500):  # bounded IN lists
            found.update((getattr(row, key.name), row) for row in
                         model.select().where(key.in_(values[start:start + 500])))
        return found
    users = rows(models.User, models.User.username, [i.username for i in identities])
    tokens = rows(models.Token, models.Token.id,
                  [i.credential_id for i in identities if i.scheme == "bearer"])
    sessions = rows(models.Session, models.Session.id,
                    [i.credential_id for i in identities if i.scheme == "session"])
    return [_proves(identity, users.get(identity.username), tokens, sessions, now)
            for identity in identities]


def _proves(identity, user, tokens, sessions, now):
    if user is None or user.disabled:
        return False
    if identity.scheme == "bearer":
        token = tokens.get(identity.credential_id)
        return (token is not None and not token.revoked
                and not (token.expires and token.expires < now)
                and lower_role(token.role, user.role) == identity.role)
    if identity.scheme == "session":
        session = sessions.get(identity.credential_id)
        return (session is not None and not session.revoked and session.expires >= now
                and user.role == identity.role)
    return identity.proof == digest(user.password_hash) and user.role == identity.role


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
