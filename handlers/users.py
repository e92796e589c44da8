"""``/users``: accounts and their passwords (admins; a user may read and change their own)."""
from jobjoker.accounts import PASSWORD_KEYS, USER_KEYS, USER_UPDATE_HINT, USER_UPDATE_KEYS
from jobjoker.handlers.base import APIHandler


class AccountsHandler(APIHandler):
    """Base of the account handlers: the accounts service."""

    @property
    def accounts(self):
        return self.settings["accounts"]


class UsersHandler(AccountsHandler):
    """The collection of users."""

    permissions = {"GET": "admin", "POST": "admin"}

    async def get(self):
        """Every user (never a password hash)."""
        self.send_data(await self.accounts.list_users())

    async def post(self):
        """Create a user from ``{"username", "password", "role"}``."""
        user = await self.accounts.create_user(self.identity, self.actor,
                                              self.json_body(USER_KEYS))
        self.send_data(user, 201, "user %s created" % user["username"])


class UserHandler(AccountsHandler):
    """One user: read (yourself, or anyone as admin), change role or disabled, delete."""

    permissions = {"GET": "self", "PATCH": "admin", "DELETE": "admin"}

    async def get(self, username):
        """The user."""
        self.send_data(await self.accounts.get_user(self.identity, username))

    async def patch(self, username):
        """Change ``role`` and/or ``disabled``."""
        body = self.json_body(USER_UPDATE_KEYS, USER_UPDATE_HINT)
        self.send_data(await self.accounts.update_user(self.identity, self.actor, username, body),
                       message="user %s updated" % username)

    async def delete(self, username):
        """Delete the user with their tokens and sessions."""
        self.send_data(await self.accounts.delete_user(self.actor, username),
                       message="user %s deleted" % username)


class PasswordHandler(AccountsHandler):
    """A user's password: yours (with the current one), or anyone's as admin."""

    permissions = {"PUT": "self"}

    async def put(self, username):
        """Set ``{"password", "current"}``; ends the user's browser sessions."""
        user = await self.accounts.set_password(self.identity, self.actor, username,
                                                self.json_body(PASSWORD_KEYS))
        self.send_data(user, message="password of %s changed" % username)


default_handlers = [
    (r"/users", UsersHandler),
    (r"/users/([^/]+)", UserHandler),
    (r"/users/([^/]+)/password", PasswordHandler),
]
