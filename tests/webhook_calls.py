"""The webhook calls that tests/test_openapi.py checks against the document (one of each
operation, and its refusals)."""


async def exercise_webhooks(expect):
    """Create, read, change, test, rotate, page the deliveries of and delete a webhook."""
    created = await expect(201, "POST", "/webhooks", {
        "url": "http://127.0.0.1:9/hook", "scope": "worker", "scope_value": "Foobar",
        "statuses": ["error", "done"], "description": "the document's"})
    hook_id = created.data[0]["id"]
    assert created.data[0]["secret"].startswith("whsec_")
    await expect(400, "POST", "/webhooks", {"url": "ftp://example.com/"})
    listed = await expect(200, "GET", "/webhooks")
    assert "secret" not in listed.data[0]
    await expect(200, "GET", "/webhooks/%s" % hook_id)
    await expect(200, "PATCH", "/webhooks/%s" % hook_id, {"enabled": False})
    await expect(202, "POST", "/webhooks/%s/test" % hook_id)
    await expect(200, "GET", "/webhooks/%s/deliveries?limit=5" % hook_id)
    await expect(200, "POST", "/webhooks/%s/secret" % hook_id)
    await expect(200, "DELETE", "/webhooks/%s" % hook_id)
    await expect(404, "GET", "/webhooks/%s" % hook_id)
