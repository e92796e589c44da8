"""``/audit``: the audit trail, newest first (admins)."""
from jobjoker.handlers.base import APIHandler
from jobjoker.paging import parse_page


class AuditHandler(APIHandler):
    """Who did what: jobs, workers, users, tokens, logins."""

    permissions = {"GET": "admin"}
    query_names = {"GET": ("offset", "limit", "actor", "action")}

    async def get(self):
        """A page of entries; ``actor`` and ``action`` narrow it."""
        offset, limit = parse_page(self.get_query_argument("offset", None),
                                   self.get_query_argument("limit", None), "audit",
                                   self.config)
        self.send_data(await self.settings["audit"].list(
            offset, limit, self.get_query_argument("actor", None),
            self.get_query_argument("action", None)))


default_handlers = [
    (r"/audit", AuditHandler),
]
