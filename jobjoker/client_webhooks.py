"""The Python client's webhook methods (admins only), mixed into ``jobjoker.client.Client``.

Contract: each method makes one request through the client's transport and returns the
parsed ``data`` (a dict for one webhook or delivery, a list for several), raising the client's
``ClientError`` subclasses on a refusal, as every ``Client`` method does. ``create_webhook`` and
``rotate_webhook_secret`` return the webhook with its ``secret``: the only time it is shown.
"""
from jobjoker.client_transport import quote


class WebhooksClient:
    """``/webhooks``: URLs told of job ends (see docs/webhooks.md)."""

    def webhooks(self):
        """Every webhook, without its secret."""
        return self._data("GET", "/webhooks")

    def webhook(self, hook_id):
        return self._item("GET", "/webhooks/" + quote(hook_id))

    def create_webhook(self, url, scope="server", scope_value=None, statuses=None,
                       description=None, enabled=True):
        """A new webhook; its ``secret`` (which signs each delivery) is shown this once."""
        body = {"url": url, "scope": scope, "scope_value": scope_value,
                "description": description, "enabled": enabled}
        if statuses is not None:
            body["statuses"] = list(statuses)
        return self._json("POST", "/webhooks", body)

    def update_webhook(self, hook_id, **changes):
        """Change ``url``, ``scope``, ``scope_value``, ``statuses``, ``description`` or
        ``enabled`` (False disables it); the webhook."""
        return self._json("PATCH", "/webhooks/" + quote(hook_id), changes)

    def delete_webhook(self, hook_id):
        """Delete a webhook with its deliveries; the webhook."""
        return self._item("DELETE", "/webhooks/" + quote(hook_id))

    def rotate_webhook_secret(self, hook_id):
        """A new secret for the webhook, in ``secret`` this once; the old one signs no more."""
        return self._item("POST", "/webhooks/%s/secret" % quote(hook_id))

    def test_webhook(self, hook_id):
        """Send the webhook a ``webhook.test`` delivery; the delivery."""
        return self._item("POST", "/webhooks/%s/test" % quote(hook_id))

    def webhook_deliveries(self, hook_id, offset=0, limit=100):
        """A page of the webhook's deliveries, newest first."""
        return self._data("GET", "/webhooks/%s/deliveries" % quote(hook_id), offset=offset,
                          limit=limit)
