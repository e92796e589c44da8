"""The OpenAPI document's part for webhooks (``handlers/webhooks.py``).

Contract: ``webhook_schemas()`` returns the schemas of a webhook, a webhook with its secret, a
delivery, the bodies of ``POST /webhooks`` and ``PATCH /webhooks/{id}`` and their envelopes;
``webhook_paths(operation, json_reply)`` the paths ``/webhooks``, ``/webhooks/{id}``,
``/webhooks/{id}/secret``, ``/webhooks/{id}/test`` and ``/webhooks/{id}/deliveries``.
``openapi_components`` and ``openapi_paths`` add them to theirs.
"""
from jobjoker.openapi_components import TIMESTAMP, envelope, header, nullable, ref, \
    strict_object
from jobjoker.webhooks import DELIVERY_STATES, MAX_URL, SCOPES, STATUSES, TEST_EVENT, JOB_EVENT
from jobjoker.webhooks_sender import SIGNATURE_HEADER

URL = {"type": "string", "maxLength": MAX_URL, "format": "uri",
       "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]",
       "description": "Where each delivery is POSTed: http:// or https:// with a host. "
                      "Redirects are not followed.",
       "example": "https://hooks.example.com/jobjoker"}
SCOPE = {"type": "string", "enum": list(SCOPES),
         "description": "Which jobs it hears of: every job (`server`), a worker's "
                        "(`worker`), or a schedule's (`schedule`)."}
SCOPE_VALUE = nullable({"type": "string", "minLength": 1, "maxLength": 64,
                        "description": "The worker's name (for `worker`) or the schedule's id "
                                       "(for `schedule`); null or left out for `server`. A "
                                       "value that does not agree with the scope: 400."})
HOOK_STATUSES = {"type": "array", "minItems": 1, "uniqueItems": True,
                 "items": {"type": "string", "enum": list(STATUSES)},
                 "description": "The final statuses it hears of (default: all)."}
DESCRIPTION = nullable({"type": "string", "maxLength": 200})


def _hook_properties():
    return {
        "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "url": URL, "scope": SCOPE, "scope_value": SCOPE_VALUE, "statuses": HOOK_STATUSES,
        "description": DESCRIPTION,
        "created": TIMESTAMP,
        "created_by": nullable({"type": "string"}),
        "enabled": {"type": "boolean"},
        "disabled": nullable(dict(TIMESTAMP, description="When it was disabled.")),
    }


def _body(description, required):
    schema = {"type": "object", "additionalProperties": False,
              "description": description, "properties": {
                "url": URL, "scope": dict(SCOPE, default="server"), "scope_value": SCOPE_VALUE,
                "statuses": HOOK_STATUSES, "description": DESCRIPTION,
                "enabled": {"type": "boolean", "default": True}},
            "example": {"url": "https://hooks.example.com/jobjoker", "scope": "worker",
                        "scope_value": "TestWorker", "statuses": ["error"]}}
    if required:  # OpenAPI 3.0: a required list is never empty
        schema["required"] = required
    return schema


def webhook_schemas():
    """The schemas (envelopes included) of this part."""
    secret = {"type": "string", "description": "Signs each delivery (`%s`, see "
                                               "docs/webhooks.md); shown only in this reply."
                                               % SIGNATURE_HEADER}
    result = {
        "Webhook": strict_object("A URL told of job ends; its secret is never shown again.",
                                 _hook_properties()),
        "WebhookWithSecret": strict_object("A webhook with its secret, shown this once.",
                                           dict(_hook_properties(), secret=secret)),
        "WebhookDelivery": strict_object("One thing to tell one webhook, and how it went.", {
            "id": {"type": "integer", "description": "Sent as `X-JobJoker-Delivery`, the same "
                                                     "on every attempt."},
            "hook": {"type": "string"},
            "job": nullable({"type": "string", "description": "The job that ended (null for "
                                                              "a test)."}),
            "event": {"type": "string", "enum": [JOB_EVENT, TEST_EVENT]},
            "state": {"type": "string", "enum": list(DELIVERY_STATES)},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt": nullable(dict(TIMESTAMP, description="When it is tried (next).")),
            "last_code": nullable({"type": "integer", "description": "The last attempt's HTTP "
                                                                     "status."}),
            "last_error": nullable({"type": "string", "description": "What went wrong last "
                                                                     "(null once delivered)."}),
            "created": TIMESTAMP,
            "finished": nullable(dict(TIMESTAMP, description="When it was delivered or given "
                                                             "up.")),
        }),
        "WebhookCreate": _body("A new webhook.", ["url"]),
        "WebhookChange": _body("The fields to change.", []),
    }
    for name, item, description, count in (
            ("WebhookListEnvelope", "Webhook", "Every webhook, oldest first.", None),
            ("WebhookEnvelope", "Webhook", "One webhook.", 1),
            ("WebhookSecretEnvelope", "WebhookWithSecret", "The webhook and its secret.", 1),
            ("WebhookDeliveryEnvelope", "WebhookDelivery", "One delivery.", 1),
            ("WebhookDeliveryListEnvelope", "WebhookDelivery", "Deliveries, newest first.",
             None)):
        result[name] = envelope(ref("schemas", item), description, min_items=count or 0,
                                max_items=count)
    return result


def webhook_paths(operation, json_reply):
    """The paths of this part (``operation`` and ``json_reply`` are ``openapi_paths``')."""
    hook_id = [{"name": "id", "in": "path", "required": True, "description": "The webhook's id.",
                "schema": {"type": "string"}}]

    def body(name):
        return {"required": True, "content": {"application/json": {
            "schema": ref("schemas", name)}}}
    return {
        "/webhooks": {
            "get": operation("listWebhooks", "webhooks", "List the webhooks",
                             {"200": json_reply("Every webhook, without its secret.",
                                                "WebhookListEnvelope")}),
            "post": operation(
                "createWebhook", "webhooks", "Create a webhook",
                {"201": json_reply("Created; `secret` is shown this once.",
                                   "WebhookSecretEnvelope", headers={
                                       "Location": header("The webhook's path.")})},
                errors=["413"], body=body("WebhookCreate"),
                description="Each job end its scope and statuses match is POSTed to `url` "
                            "as JSON, signed with the secret (docs/webhooks.md). 400 naming "
                            "the field for a URL that is not http(s), a wrong scope, "
                            "scope_value or statuses; nothing is stored then."),
        },
        "/webhooks/{id}": {
            "parameters": hook_id,
            "get": operation("getWebhook", "webhooks", "Read a webhook",
                             {"200": json_reply("The webhook.", "WebhookEnvelope")},
                             errors=["404"]),
            "patch": operation("changeWebhook", "webhooks", "Change, enable or disable a "
                               "webhook", {"200": json_reply("The webhook as changed.",
                                                             "WebhookEnvelope")},
                               errors=["404", "413"], body=body("WebhookChange"),
                               description="Checked as at creation; 400 changes nothing."),
            "delete": operation("deleteWebhook", "webhooks", "Delete a webhook",
                                {"200": json_reply("The webhook deleted, with its deliveries.",
                                                   "WebhookEnvelope")}, errors=["404"]),
        },
        "/webhooks/{id}/secret": {
            "parameters": hook_id,
            "post": operation("rotateWebhookSecret", "webhooks", "Give a webhook a new secret",
                              {"200": json_reply("The new secret, shown this once; the old "
                                                 "one signs no more.",
                                                 "WebhookSecretEnvelope")}, errors=["404"]),
        },
        "/webhooks/{id}/test": {
            "parameters": hook_id,
            "post": operation("testWebhook", "webhooks", "Send a webhook a test delivery",
                              {"202": json_reply("The delivery, sent at once like any other "
                                                 "(event `%s`)." % TEST_EVENT,
                                                 "WebhookDeliveryEnvelope")}, errors=["404"]),
        },
        "/webhooks/{id}/deliveries": {
            "parameters": hook_id,
            "get": operation(
                "listWebhookDeliveries", "webhooks", "List a webhook's deliveries",
                {"200": json_reply("A page of deliveries, newest first.",
                                   "WebhookDeliveryListEnvelope", headers={
                                       "X-Total-Count": header(
                                           "How many deliveries the webhook has.",
                                           {"type": "integer", "minimum": 0})})},
                errors=["404"],
                parameters=[ref("parameters", "Offset"), ref("parameters", "AuditLimit")]),
        },
    }
