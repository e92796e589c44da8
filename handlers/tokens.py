"""``/tokens``: API tokens for scripts (``Authorization: Bearer jj_...``)."""
from jobjoker.accounts import TOKEN_KEYS
from jobjoker.handlers.users import AccountsHandler


class TokensHandler(AccountsHandler):
    """Your tokens (an admin may ask for ``?user=NAME`` or ``?user=*``); create one."""

    permissions = {"GET": "self", "POST": "self"}
    query_names = {"GET": ("user",)}

    async def get(self):
        """The tokens, never their secrets."""
        self.send_data(await self.accounts.list_tokens(self.identity,
                                                       self.get_query_argument("user", None)))

    async def post(self):
        """Create a token from ``{"name", "role", "expires_in"}``: its secret is shown once."""
        token = await self.accounts.create_token(self.identity, self.actor,
                                                 self.json_body(TOKEN_KEYS))
        self.send_data(token, 201, "token %s created: copy it now, it is not shown again"
                       % token["id"])


class TokenHandler(AccountsHandler):
    """One token: revoke it (its owner or an admin)."""

    permissions = {"DELETE": "self"}

    async def delete(self, token_id):
        """Revoke the token at once."""
        self.send_data(await self.accounts.revoke_token(self.identity, self.actor, token_id),
                       message="token %s revoked" % token_id)


default_handlers = [
    (r"/tokens", TokensHandler),
    (r"/tokens/([^/]+)", TokenHandler),
]
