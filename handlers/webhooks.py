"""``/webhooks``: URLs told of job ends (admins only: a hook's URL and scope are not for
viewers), their secrets (shown once), and each delivery's outcome (``jobjoker.webhooks``)."""
from jobjoker.handlers.base import APIHandler
from jobjoker.paging import parse_page
from jobjoker.webhooks import FIELDS

ADMIN_ONLY = {method: "admin" for method in ("GET", "POST", "PATCH", "PUT", "DELETE")}


class WebhookHandlerBase(APIHandler):
    """What every webhook route shares: admins only."""

    permissions = ADMIN_ONLY

    @property
    def webhooks(self):
        return self.settings["webhooks"]


class WebhooksHandler(WebhookHandlerBase):
    """Every webhook; create one."""

    async def get(self):
        """Every webhook, oldest first, never their secrets."""
        self.send_data(await self.webhooks.list())

    async def post(self):
        """Create a webhook from ``{url, scope, scope_value, statuses, description, enabled}``;
        its secret is in the reply, this once."""
        hook = await self.webhooks.create(self.actor, self.json_body(FIELDS))
        self.set_header("Location", "%s/webhooks/%s" % (self.config.base_path, hook["id"]))
        self.send_data(hook, 201, "webhook %s created: copy its secret now, it is not shown "
                                  "again" % hook["id"])


class WebhookHandler(WebhookHandlerBase):
    """One webhook: read, change (PATCH; ``enabled`` false disables it) or delete it."""

    async def get(self, hook_id):
        """The webhook, without its secret."""
        self.send_data(await self.webhooks.get(hook_id))

    async def patch(self, hook_id):
        """Change the fields the body names."""
        hook = await self.webhooks.update(self.actor, hook_id, self.json_body(FIELDS))
        self.send_data(hook, message="webhook %s changed" % hook_id)

    async def delete(self, hook_id):
        """Delete the webhook and its deliveries."""
        self.send_data(await self.webhooks.delete(self.actor, hook_id),
                       message="webhook %s deleted" % hook_id)


class WebhookSecretHandler(WebhookHandlerBase):
    """A new secret for a webhook."""

    async def post(self, hook_id):
        """The webhook with its new secret, shown this once; the old one signs no more."""
        self.send_data(await self.webhooks.rotate(self.actor, hook_id),
                       message="webhook %s has a new secret: copy it now, it is not shown "
                               "again" % hook_id)


class WebhookTestHandler(WebhookHandlerBase):
    """A test delivery."""

    async def post(self, hook_id):
        """Owe the webhook a ``webhook.test`` delivery, sent at once; the delivery."""
        self.send_data(await self.webhooks.test(self.actor, hook_id), 202,
                       "a test delivery to webhook %s is on its way: see its deliveries"
                       % hook_id)


class WebhookDeliveriesHandler(WebhookHandlerBase):
    """What a webhook was sent, and how it went."""

    query_names = {"GET": ("offset", "limit")}

    async def get(self, hook_id):
        """A page of deliveries, newest first; ``X-Total-Count`` has them all."""
        offset, limit = parse_page(self.get_query_argument("offset", None),
                                   self.get_query_argument("limit", None), "audit", self.config)
        page, total = await self.webhooks.deliveries(hook_id, offset, limit)
        self.set_header("X-Total-Count", str(total))
        self.send_data(page)


default_handlers = [
    (r"/webhooks", WebhooksHandler),
    (r"/webhooks/([^/]+)", WebhookHandler),
    (r"/webhooks/([^/]+)/secret", WebhookSecretHandler),
    (r"/webhooks/([^/]+)/test", WebhookTestHandler),
    (r"/webhooks/([^/]+)/deliveries", WebhookDeliveriesHandler),
]
