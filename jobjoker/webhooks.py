"""Webhooks on job ends: the hooks admins manage, and the deliveries a job's end owes them.

Contract: ``WebhookService(storage, secret_box, audit, wake)`` manages ``webhook`` rows (the
only module that writes them) for ``handlers/webhooks.py``: ``create`` checks a body with
``check_fields`` (``BadRequest`` naming the field, nothing stored), makes the hook's secret
(``secrets``), stores it sealed with the server's ``SecretBox`` and returns it this once, in
``secret``; ``rotate`` makes a new one and returns it once too; nothing else ever shows it.
``update``, ``delete``, ``rotate`` and ``create`` go into the audit trail (``webhook.*``).

``job_ended(tx, job)`` is a storage end hook (``storage.end_hooks``, registered by
``jobjoker.app``): on the writer thread, inside the transaction that moved ``job`` to a final
status, it inserts one ``pending`` delivery per enabled hook whose scope matches (every job for
``server``, ``job.worker`` for ``worker``, ``job.schedule_id`` for ``schedule``) and whose
``statuses`` hold the job's status, with the body ``job_event`` builds; so a delivery is owed
exactly when the end commits. It then has ``wake()`` called after the commit (the sender,
``jobjoker.webhooks_sender``, which sends it). ``test`` owes a hook a ``webhook.test`` delivery.
"""
import json
import secrets
import time
import urllib.parse

from jobjoker import models, results
from jobjoker.errors import BadRequest, NotFound
from jobjoker.jobstore import job_to_dict
from jobjoker.states import FINAL_STATES, describe
from jobjoker.statements import execute, param
from jobjoker.workers import NAME_PATTERN, NAME_RULE

Webhook, Delivery = models.Webhook, models.WebhookDelivery
SCOPES = ("server", "worker", "schedule")
STATUSES = tuple(sorted(status.value for status in FINAL_STATES))  # done, error, stop
DELIVERY_STATES = ("pending", "delivered", "failed")
FIELDS = ("url", "scope", "scope_value", "statuses", "description", "enabled")
MAX_URL = 2000
# A delivery's body is stored in a TEXT column (65,535 bytes on MySQL) and sent to receivers
# that may have limits of their own: a big result or big parameters are left out past this.
MAX_BODY_BYTES = 60 * 1024
ERROR_KEPT = 2000  # characters of a job's error kept in a body that is still too big
SECRET_PREFIX = "whsec_"
JOB_EVENT, TEST_EVENT = "job.ended", "webhook.test"
# What a delivery body tells of the job: what a receiver acts on, not the whole job.
JOB_KEYS = ("id", "worker", "status", "reason", "error", "created", "starttime", "stoptime",
            "duration", "created_by", "schedule_id", "attempt", "retry_of", "parameters")


# --- checking what an admin sends ---------------------------------------------------------------

def check_url(url):
    """``url`` if it is an absolute http(s) URL with a host, else ``BadRequest`` naming url."""
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("url must be an http:// or https:// URL, e.g. "
                         "https://hooks.example.com/jobjoker")
    if len(url) > MAX_URL:
        raise BadRequest("url is %d characters long; at most %d" % (len(url), MAX_URL))
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # a port that is not a number raises here
    except ValueError as e:
        raise BadRequest("url %r is not a valid URL (%s)" % (url, e))
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest("url must start with http:// or https://, not %r"
                         % (parts.scheme + ":" if parts.scheme else url))
    if not parts.hostname:
        raise BadRequest("url %r names no host; write it as https://HOST/PATH" % url)
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise BadRequest("url must not hold spaces or control characters; percent-encode them")
    return url


def _check_statuses(statuses):
    if statuses is None:
        return list(STATUSES)
    if not isinstance(statuses, list) or not statuses or any(
            status not in STATUSES for status in statuses):
        raise BadRequest("statuses must be a non-empty list of final statuses among %s "
                         "(default: all), got %s" % (", ".join(STATUSES), json.dumps(statuses)))
    return sorted(set(statuses))


def check_fields(body, current=None):
    """The column values of a hook from ``body`` (a whole hook for a creation, or changes
    over ``current``, a hook's dict), or ``BadRequest`` naming the first wrong field."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object like {\"url\": \"https://...\", "
                         "\"scope\": \"server\"}")
    merged = dict(current or {"scope": "server", "statuses": None, "description": None,
                              "enabled": True, "scope_value": None}, **body)
    if "scope" in body and "scope_value" not in body and body["scope"] == "server":
        merged["scope_value"] = None  # a hook made server-wide forgets its worker or schedule
    scope, value = merged["scope"], merged.get("scope_value")
    if scope not in SCOPES:
        raise BadRequest("scope must be one of %s, got %s" % (", ".join(SCOPES), json.dumps(scope)))
    if scope == "server" and value is not None:
        raise BadRequest("scope_value must be null (or left out) for scope server: a "
                         "server-wide hook hears of every job")
    limit = Webhook.scope_value.max_length
    if scope != "server" and not (isinstance(value, str) and 0 < len(value) <= limit):
        raise BadRequest("scope_value must name the %s (a string of 1 to %d characters) for "
                         "scope %s" % ("worker" if scope == "worker" else "schedule's id",
                                       limit, scope))
    if scope == "worker" and not NAME_PATTERN.fullmatch(value):
        raise BadRequest("scope_value %r is not a worker name: %s" % (value, NAME_RULE))
    description = merged.get("description")
    if description is not None and not (
            isinstance(description, str) and len(description) <= Webhook.description.max_length):
        raise BadRequest("description must be a string of at most %d characters, or null"
                         % Webhook.description.max_length)
    if not isinstance(merged.get("enabled"), bool):
        raise BadRequest("enabled must be true or false")
    return {"url": check_url(merged.get("url")), "scope": scope, "scope_value": value,
            "statuses": ",".join(_check_statuses(merged.get("statuses"))),
            "description": description, "enabled": merged["enabled"]}


# --- what clients see ---------------------------------------------------------------------------

def hook_to_dict(hook, secret=None):
    """A hook as the API shows it (its ``secret`` only when just made)."""
    shown = {"id": hook.id, "url": hook.url, "scope": hook.scope,
             "scope_value": hook.scope_value, "statuses": hook.statuses.split(","),
             "description": hook.description, "created": hook.created,
             "created_by": hook.created_by, "enabled": hook.disabled is None,
             "disabled": hook.disabled}
    if secret is not None:
        shown["secret"] = secret
    return shown


def delivery_to_dict(delivery):
    return {"id": delivery.id, "hook": delivery.hook, "job": delivery.job or None,
            "event": JOB_EVENT if delivery.job else TEST_EVENT, "state": delivery.state,
            "attempts": delivery.attempts, "next_attempt": delivery.next_attempt,
            "last_code": delivery.last_code, "last_error": delivery.last_error,
            "created": delivery.created, "finished": delivery.finished}


def job_event(job, result):
    """The body owed for ``job`` (a row, ended) with its structured ``result`` (parsed, or
    None), as compact JSON text: signed and sent byte for byte as stored. At most
    ``MAX_BODY_BYTES``: past it the result, then the parameters, are left out (null, and named
    in ``omitted``), and the error is cut short."""
    whole = job_to_dict(job)  # as the API shows it: duration, parameters masked
    shown = {key: whole[key] for key in JOB_KEYS}
    message = "job %s of %s %s%s" % (job.id, job.worker, describe(job.status),
                                     " (%s)" % job.reason if job.reason else "")
    event = {"event": JOB_EVENT, "job": shown, "result": result, "omitted": [],
             "message": message + (": %s" % job.error if job.error else "")}
    for cut in ("result", "parameters", "error"):
        text = json.dumps(event, separators=(",", ":"))
        if len(text.encode("utf-8")) <= MAX_BODY_BYTES:
            return text
        event["omitted"].append(cut)
        if cut == "result":
            event["result"] = None
        elif cut == "parameters":
            shown["parameters"] = None
        else:
            shown["error"] = job.error[:ERROR_KEPT] if job.error else None
            event["message"] = message + (": %s" % shown["error"] if job.error else "")
    return json.dumps(event, separators=(",", ":"))


# --- rows (storage threads) ---------------------------------------------------------------------

def _get(hook_id):
    hook = Webhook.get_or_none(Webhook.id == hook_id)
    if hook is None:
        raise NotFound("no webhook with id %r" % hook_id)
    return hook


def _owe(rows):
    Delivery.insert_many(rows).execute()


def matching_hooks(job):
    """Writer thread: the ids of the enabled hooks that want to hear of ``job``'s end."""
    cursor = execute("webhooks for an end", lambda: Webhook.select(
        Webhook.id, Webhook.statuses).where(
        Webhook.disabled.is_null(),
        (Webhook.scope == param("server"))
        | ((Webhook.scope == param("worker")) & (Webhook.scope_value == param("its worker")))
        | ((Webhook.scope == param("schedule"))
           & (Webhook.scope_value == param("its schedule")))),
        {"server": "server", "worker": "worker", "schedule": "schedule",
         "its worker": job.worker, "its schedule": job.schedule_id or ""})
    return [hook_id for hook_id, statuses in cursor.fetchall()
            if job.status in statuses.split(",")]


class WebhookService:
    """Webhooks for the handlers, and the end hook that owes them deliveries."""

    def __init__(self, storage, secret_box, audit, wake):
        self.storage = storage
        self.box = secret_box
        self.audit = audit
        self.wake = wake  # called on the writer thread after a commit that owes deliveries

    def job_ended(self, tx, job):
        """The end hook: owe each matching hook a delivery, with the end (see the module)."""
        hooks = matching_hooks(job)
        if not hooks:
            return
        result = None
        if job.result_size is not None:
            text = results.read(job.id)
            result = json.loads(text) if text is not None else None
        body, now = job_event(job, result), time.time()
        _owe([{"hook": hook_id, "job": job.id, "body": body, "state": "pending",
               "attempts": 0, "next_attempt": now, "created": now} for hook_id in hooks])
        tx.on_commit(self.wake)

    async def list(self):
        """Every hook, oldest first."""
        return await self.storage.read(lambda: [hook_to_dict(hook) for hook in
                                                Webhook.select().order_by(Webhook.created)])

    async def get(self, hook_id):
        return await self.storage.read(lambda: hook_to_dict(_get(hook_id)))

    async def create(self, actor, body):
        """A new hook from ``body``; its ``secret`` is in the reply, this once."""
        fields = check_fields(body)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        hook_id = secrets.token_hex(8)

        def write(tx):
            enabled = fields.pop("enabled")
            hook = Webhook.create(id=hook_id, secret=self.box.seal({"secret": secret}),
                                  created=time.time(), created_by=actor.username,
                                  disabled=None if enabled else time.time(), **fields)
            self.audit.record(tx, actor, "webhook.create", hook_id, _detail(hook))
            return hook_to_dict(hook, secret)
        return await self.storage.transaction(write)

    async def update(self, actor, hook_id, body):
        """Change what ``body`` names of a hook (``enabled`` false disables it)."""
        def write(tx):
            hook = _get(hook_id)
            fields = check_fields(body, hook_to_dict(hook))
            enabled = fields.pop("enabled")
            if enabled != (hook.disabled is None):
                hook.disabled = None if enabled else time.time()
            for name, value in fields.items():
                setattr(hook, name, value)
            hook.save()
            self.audit.record(tx, actor, "webhook.update", hook_id, _detail(hook))
            return hook_to_dict(hook)
        return await self.storage.transaction(write)

    async def rotate(self, actor, hook_id):
        """A new secret for the hook, in the reply this once; the old one signs no more."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)

        def write(tx):
            hook = _get(hook_id)
            hook.secret = self.box.seal({"secret": secret})
            hook.save()
            self.audit.record(tx, actor, "webhook.rotate", hook_id)
            return hook_to_dict(hook, secret)
        return await self.storage.transaction(write)

    async def delete(self, actor, hook_id):
        """Delete the hook and its deliveries, sent or not."""
        def write(tx):
            hook = _get(hook_id)
            Delivery.delete().where(Delivery.hook == hook_id).execute()
            hook.delete_instance()
            self.audit.record(tx, actor, "webhook.delete", hook_id, _detail(hook))
            return hook_to_dict(hook)
        return await self.storage.transaction(write)

    async def test(self, actor, hook_id):
        """Owe the hook a ``webhook.test`` delivery (sent like any other); the delivery."""
        def write(tx):
            _get(hook_id)
            now = time.time()
            body = json.dumps({"event": TEST_EVENT, "webhook": hook_id, "message":
                               "a test delivery to webhook %s, asked for by %s"
                               % (hook_id, actor.username)}, separators=(",", ":"))
            delivery = Delivery.create(hook=hook_id, job="", body=body, state="pending",
                                       attempts=0, next_attempt=now, created=now)
            tx.on_commit(self.wake)
            return delivery_to_dict(delivery)
        return await self.storage.transaction(write)

    async def deliveries(self, hook_id, offset, limit):
        """``(page, total)``: a page of the hook's deliveries, newest first."""
        def read():
            _get(hook_id)
            query = Delivery.select().where(Delivery.hook == hook_id)
            page = query.order_by(Delivery.id.desc()).offset(offset).limit(limit)
            return [delivery_to_dict(row) for row in page], query.count()
        return await self.storage.read(read)


def _detail(hook):
    """What the audit trail says of a hook: where it points and what it hears (no secret)."""
    parts = urllib.parse.urlsplit(hook.url)
    # Only scheme, host and path: a query string may carry a receiver's token (Slack's do).
    where = "%s://%s%s" % (parts.scheme, parts.hostname or "", parts.path)
    scope = hook.scope + ("=" + hook.scope_value if hook.scope_value else "")
    return "%s %s on %s%s" % (where, scope, hook.statuses,
                              "" if hook.disabled is None else " (disabled)")
