"""Users, API tokens and browser sessions, as the API manages them.

Contract: ``Accounts`` validates input (domain errors with what to fix), enforces who may
change what beyond the route's role (a user may change their own password, giving the current
one, admins too, and manage their own tokens; only an admin manages users and others' tokens;
the last active admin cannot be removed, disabled or demoted; an API token creates no
credentials: no token, no user, no password, no promotion or re-enabling of a user), hashes
passwords in an executor, and records every change in the audit log, in the same transaction as
the change. After committing a change that may end someone's credentials it awaits the
credential watch, which closes their sockets that lost their proof. Every method is a coroutine:
the database work runs on the storage's threads. Token secrets and session cookies are returned
once, at creation, and stored hashed.
"""
import asyncio
import re
import secrets
import time

from jobjoker import auth, models
from jobjoker.audit import Actor
from jobjoker.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationError
from jobjoker.roles import ROLES, outranks

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_TOKEN_NAME = 100  # characters
# What each body takes (the handlers refuse any other key, jobjoker.bodies).
USER_KEYS = ("username", "password", "role")
USER_UPDATE_KEYS = ("role", "disabled")
USER_UPDATE_HINT = " (a password changes at /users/NAME/password)"
PASSWORD_KEYS = ("password", "current")
TOKEN_KEYS = ("name", "role", "expires_in")
LOGIN_KEYS = ("username", "password")


def user_to_dict(user):
    return {"username": user.username, "role": user.role, "created": user.created,
            "disabled": user.disabled}


def token_to_dict(token):
    return {"id": token.id, "name": token.name, "username": token.username, "role": token.role,
            "created": token.created, "expires": token.expires, "last_used": token.last_used,
            "revoked": token.revoked}


def check_password_rule(password):
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError("a password must be text of %d to %d characters"
                              % (MIN_PASSWORD, MAX_PASSWORD))
    return password


def check_role(role):
    if role not in ROLES:
        raise ValidationError("unknown role %r; use one of %s" % (role, ", ".join(ROLES)))
    return role


def _object(body, example):
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object like %s" % example)
    return body


async def _hash(password):
    return await asyncio.get_running_loop().run_in_executor(None, auth.hash_password, password)


class Accounts:
    """Users, tokens and sessions."""

    def __init__(self, storage, authenticator, audit, session_lifetime, watch=None):
        self.storage = storage
        # Told (after the commit) of every change that may end someone's credentials, so their
        # open sockets close now (jobjoker.credential_watch).
        self.watch = watch
        self.session_lifetime = session_lifetime  # seconds
        self.authenticator = authenticator
        self.audit = audit

    # --- users -----------------------------------------------------------------------------------

    async def get_user(self, identity, username):
        if identity.username != username and not identity.may("admin"):
            raise Forbidden("only an admin may see other users")
        return user_to_dict(await self.storage.read(_user, username))

    async def list_users(self):
        return await self.storage.read(lambda: [
            user_to_dict(u) for u in models.User.select().order_by(models.User.username)])

    async def create_user(self, identity, actor, body):
        body = _object(body, '{"username": "ann", "password": "...", "role": "operator"}')
        _refuse_token(identity, "create users")
        username = body.get("username")
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            raise BadRequest("a username is 1 to 64 letters, digits or . _ @ -, starting with "
                             "a letter or digit")
        role = check_role(body.get("role", "viewer"))
        password = check_password_rule(body.get("password"))
        if await self.storage.read(_find_user, username) is not None:
            raise Conflict("a user named %r exists already" % username)
        password_hash = await _hash(password)

        def create(tx):
            if _find_user(username) is not None:  # created meanwhile
                raise Conflict("a user named %r exists already" % username)
            user = models.User.create(username=username, password_hash=password_hash,
                                      role=role)
            self.audit.record(tx, actor, "user.create", username, "role %s" % role)
            return user_to_dict(user)
        return await self.storage.transaction(create)

    async def update_user(self, identity, actor, username, body):
        """Change a user's role or disabled flag (admin; with a token, only to lower them)."""
        body = _object(body, '{"role": "viewer", "disabled": false}')
        await self.storage.read(_user, username)  # 404 before the values are judged
        changes = {}
        if "role" in body:
            changes["role"] = check_role(body["role"])
        if "disabled" in body:
            if not isinstance(body["disabled"], bool):
                raise BadRequest('"disabled" must be true or false')
            changes["disabled"] = body["disabled"]

        def update(tx):
            user = _user(username)
            if identity.scheme == "bearer" and (
                    outranks(changes.get("role", user.role), user.role)
                    or (user.disabled and changes.get("disabled") is False)):
                # Promoting or re-enabling an account whose password one knows would turn a
                # token into a lasting sign-in: that is making credentials.
                raise Forbidden("a token cannot raise a user's role or enable a user: sign in "
                                "with a password")
            stays_admin = changes.get("role", user.role) == "admin" and not changes.get(
                "disabled", user.disabled)
            if user.role == "admin" and not user.disabled and not stays_admin:
                _keep_an_admin(username)
            if changes:  # an empty UPDATE is not SQL
                models.User.update(**changes).where(models.User.username == username).execute()
            if changes.get("disabled") or ("role" in changes and changes["role"] != user.role):
                _end_sessions(username)  # rights shrink now, not at the next login
            self.audit.record(tx, actor, "user.update", username,
                              ", ".join("%s=%s" % item for item in sorted(changes.items())))
            return user_to_dict(_user(username))
        return await self._then_recheck(username, await self.storage.transaction(update))

    async def delete_user(self, actor, username):
        def delete(tx):
            user = _user(username)
            if user.role == "admin" and not user.disabled:
                _keep_an_admin(username)
            # Their tokens and sessions go with the row (ON DELETE CASCADE, schema v5).
            models.User.delete().where(models.User.username == username).execute()
            self.audit.record(tx, actor, "user.delete", username)
            return user_to_dict(user)
        return await self._then_recheck(username, await self.storage.transaction(delete))

    async def set_password(self, identity, actor, username, body):
        """A user changes their own password (giving the current one); an admin anyone's."""
        body = _object(body, '{"current": "...", "password": "..."}')
        _refuse_token(identity, "change passwords")
        if identity.username != username and not identity.may("admin"):
            raise Forbidden("only an admin may change another user's password")
        await self.storage.read(_user, username)  # 404 before anything else
        password = check_password_rule(body.get("password"))
        current = body.get("current")
        if "current" in body and not isinstance(current, str):
            raise BadRequest('"current" must be the current password, as text')
        # One's own password needs the current one, admins included: whoever holds a session
        # or a borrowed Basic header must not be able to lock the owner out and keep the
        # account. Admins resetting someone else's need not know it.
        if identity.username == username:
            if current is None or await self.authenticator.check_password(
                    username, current, actor.address) is None:
                raise Forbidden('"current" must be your current password')
        password_hash = await _hash(password)

        def change(tx):
            user = _user(username)
            models.User.update(password_hash=password_hash).where(
                models.User.username == username).execute()
            _end_sessions(username)
            self.audit.record(tx, actor, "user.password", username)
            return user_to_dict(user)
        return await self._then_recheck(username, await self.storage.transaction(change))

    # --- tokens ----------------------------------------------------------------------------------

    async def list_tokens(self, identity, username=None):
        """The caller's tokens; an admin may ask for anyone's (``username``) or all (``*``)."""
        username = username or identity.username
        if username != identity.username and not identity.may("admin"):
            raise Forbidden("only an admin may list other users' tokens")

        def tokens():
            query = models.Token.select().order_by(models.Token.created.desc())
            if username != "*":
                query = query.where(models.Token.username == username)
            return [token_to_dict(t) for t in query]
        return await self.storage.read(tokens)

    async def create_token(self, identity, actor, body):
        """A token for the caller, with a role no higher than theirs; the secret shown once."""
        body = _object(body, '{"name": "nightly import", "role": "operator", '
                             '"expires_in": 86400}')
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_TOKEN_NAME:
            raise BadRequest('"name" must say what the token is for (1 to %d characters)'
                             % MAX_TOKEN_NAME)
        role = check_role(body.get("role", identity.role))
        if outranks(role, identity.role):
            raise Forbidden("a token's role cannot be above your own (%s)" % identity.role)
        expires_in = body.get("expires_in")
        if expires_in is not None and (not isinstance(expires_in, (int, float))
                                       or isinstance(expires_in, bool) or expires_in <= 0):
            raise BadRequest('"expires_in" must be a positive number of seconds, or absent')
        _refuse_token(identity, "create tokens")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)

        def create(tx):
            token = models.Token.create(
                id=token_id, username=identity.username, name=name, role=role,
                secret_hash=auth.digest(secret),
                expires=time.time() + expires_in if expires_in else None)
            self.audit.record(tx, actor, "token.create", token_id, "%s, role %s" % (name, role))
            return token_to_dict(token)
        data = await self.storage.transaction(create)
        data["token"] = "%s%s_%s" % (auth.TOKEN_PREFIX, token_id, secret)
        return data

    async def revoke_token(self, identity, actor, token_id):
        def revoke(tx):
            token = models.Token.get_or_none(models.Token.id == token_id)
            if token is None or (token.username != identity.username
                                 and not identity.may("admin")):
                raise NotFound("no token %r of yours" % token_id)
            if not token.revoked:
                models.Token.update(revoked=time.time()).where(
                    models.Token.id == token_id).execute()
                self.audit.record(tx, actor, "token.revoke", token_id, token.name)
            return token_to_dict(models.Token.get_by_id(token_id))
        token = await self.storage.transaction(revoke)
        return await self._then_recheck(token["username"], token)

    # --- sessions --------------------------------------------------------------------------------

    async def login(self, actor, body):
        """Check a username and password; returns (user dict, session cookie)."""
        body = _object(body, '{"username": "admin", "password": "..."}')
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise BadRequest('send {"username": ..., "password": ...}')
        user = await self.authenticator.check_password(username, password, actor.address)
        if user is None:
            await self.audit.failure(actor, "login.failed", username)
            return None, None

        def sign_in(tx):
            if auth.active_user(user.username) is None:  # deleted or disabled meanwhile
                return None
            cookie = auth.create_session(tx, user.username, self.session_lifetime,
                                         actor.address)
            self.audit.record(tx, Actor(user.username, actor.address), "login.ok",
                              user.username)
            return cookie
        cookie = await self.storage.transaction(sign_in)
        return (user_to_dict(user), cookie) if cookie else (None, None)

    async def logout(self, identity, actor):
        def sign_out(tx):
            if identity.scheme == "session":
                auth.revoke_session(tx, identity.credential_id)
            self.audit.record(tx, actor, "logout", identity.username)
        await self.storage.transaction(sign_out)
        await self._then_recheck(identity.username)

    async def _then_recheck(self, username, result=None):
        """After a committed change to ``username``'s credentials: their open sockets that
        lost their proof are closed before the change is answered."""
        if self.watch is not None:
            await self.watch.changed(username)
        return result


def _refuse_token(identity, what):
    # A token never makes credentials: not tokens, not passwords (which would give a session,
    # hence tokens), not users. So a leaked token dies with its revocation or expiry.
    if identity.scheme == "bearer":
        raise Forbidden("a token cannot %s: sign in with a password" % what)


def _find_user(username):
    return models.User.get_or_none(models.User.username == username)


def _user(username):
    user = _find_user(username)
    if user is None:
        raise NotFound("no user named %r" % username)
    return user


def _keep_an_admin(username):
    others = (models.User.select()
              .where(models.User.role == "admin", ~models.User.disabled,
                     models.User.username != username)
              .exists())
    if not others:
        raise Conflict("%s is the last active admin: make another admin first" % username)


def recover_admin(tx, audit, username, password_hash):
    """``jobjoker reset-admin`` (the server's writer thread, or the command's own storage): make
    ``username`` an active admin with this password, creating it if missing, and end its
    sessions as a password change does (its tokens stay: revoke them once signed in). Recorded
    in the audit trail as the server's doing; returns what changed, for the operator."""
    user = _find_user(username)
    detail = "by jobjoker reset-admin on the server's machine"
    if user is None:
        models.User.create(username=username, password_hash=password_hash, role="admin")
        audit.record(tx, None, "user.create", username, "role admin, %s" % detail)
        return "created %s as an admin" % username
    models.User.update(password_hash=password_hash, role="admin", disabled=False).where(
        models.User.username == username).execute()
    _end_sessions(username)
    audit.record(tx, None, "user.password", username, detail)
    changed = ["a new password", "its sessions ended"]
    if user.role != "admin" or user.disabled:
        changed.insert(0, "made an active admin (was %s%s)"
                       % (user.role, ", disabled" if user.disabled else ""))
        audit.record(tx, None, "user.update", username, "role admin, enabled, %s" % detail)
    return "%s: %s" % (username, "; ".join(changed))


def _end_sessions(username):
    (models.Session.update(revoked=time.time())
     .where(models.Session.username == username, models.Session.revoked.is_null())
     .execute())
