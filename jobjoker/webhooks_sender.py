"""Sending what webhooks are owed: the outbox ``webhook_delivery``, drained from the IOLoop.

Contract: ``WebhookSender(storage, secret_box, config)``, once ``start()``ed on the loop, sends
every ``pending`` delivery whose ``next_attempt`` has come, at most ``MAX_IN_FLIGHT`` at once,
with Tornado's non-blocking HTTP client (``--webhook-timeout`` seconds to connect and as much
for the whole request, redirects never followed, the reply's body read and dropped, at most
``MAX_REPLY_BYTES``), so a receiver that hangs or fails costs the loop nothing. ``wake()``
(thread-safe: the end hook calls it after its commit) makes it look at once; otherwise it looks
every ``POLL_SECONDS``, which is how it finds what another server of the database owes, and
what a restart left pending.

**Across servers.** A delivery is claimed before it is sent by a conditional UPDATE of its
``claimed_until`` (``claim_due``, on the storage's writer: the row count decides), so two
servers never send one at the same time; a claim lapses ``lease`` seconds after it was made
(a server that died mid-send), and ``stop()`` gives back its own claims.

**Each attempt** is a POST of the stored body, byte for byte, with ``Content-Type:
application/json`` and the headers of ``signed_headers``: ``X-JobJoker-Delivery`` (the delivery's
id, the same on every attempt: a receiver drops repeats by it), ``X-JobJoker-Event``,
``X-JobJoker-Timestamp`` (epoch seconds of this attempt) and ``X-JobJoker-Signature:
sha256=<hex>``, the HMAC-SHA256 with the hook's secret of ``<timestamp>.<body>`` (``sign``;
docs/webhooks.md shows a receiver checking it). A 2xx reply is ``delivered``; anything else, a
timeout or a refused connection is recorded (``last_code``, ``last_error``) and tried again
after ``--webhook-retry-delay`` x 2^(attempts - 1) seconds (at most ``MAX_DELAY``), until
``--webhook-retries`` retries have failed: then ``failed``. A hook disabled meanwhile fails its
delivery at once. Neither secrets nor URLs (a query string may hold a token) are logged.
"""
import asyncio
import collections
import contextlib
import hashlib
import hmac
import logging
import time

import peewee
import tornado.httpclient

from jobjoker import __version__, models
from jobjoker.errors import DatabaseUnavailable, JobJokerError
from jobjoker.storage import detached
from jobjoker.webhooks import JOB_EVENT, TEST_EVENT

log = logging.getLogger(__name__)
Delivery, Webhook = models.WebhookDelivery, models.Webhook

MAX_IN_FLIGHT = 8  # deliveries being sent at once by one server
POLL_SECONDS = 5.0  # how often it looks for what it was not woken for
MAX_DELAY = 3600.0  # the longest wait between two attempts
MAX_REPLY_BYTES = 1024 * 1024  # a receiver's reply is read (and dropped) up to this
SIGNATURE_HEADER = "X-JobJoker-Signature"
TIMESTAMP_HEADER = "X-JobJoker-Timestamp"
DELIVERY_HEADER = "X-JobJoker-Delivery"
EVENT_HEADER = "X-JobJoker-Event"

Outgoing = collections.namedtuple("Outgoing", "id hook job body attempts url secret problem")


def sign(secret, timestamp, body):
    """``sha256=<hex>``: the HMAC-SHA256 with ``secret`` (text) of ``<timestamp>.<body>``
    (``body``: the bytes sent)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(delivery_id, event, secret, body, timestamp):
    return {"Content-Type": "application/json", DELIVERY_HEADER: str(delivery_id),
            EVENT_HEADER: event, TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body)}


def backoff(delay, attempts):
    """Seconds to wait after the ``attempts``-th failed attempt."""
    return min(delay * 2 ** max(attempts - 1, 0), MAX_DELAY)


# --- rows (storage threads) ---------------------------------------------------------------------

def _claimable(now):
    return (Delivery.state == "pending") & (
        Delivery.claimed_until.is_null() | (Delivery.claimed_until < now))


def next_due(now):
    """Reader thread: when the earliest pending delivery that nobody holds is due (None: there
    is none). Those being sent are left out, or a receiver that hangs would have this asked
    again and again until it answers."""
    return Delivery.select(Delivery.next_attempt).where(_claimable(now)).order_by(
        Delivery.next_attempt).limit(1).scalar()


def claim_due(tx, now, limit, lease, box):
    """Writer thread: claim up to ``limit`` due deliveries for ``lease`` seconds; each as an
    ``Outgoing`` with its hook's URL and opened secret (or the ``problem`` that fails it)."""
    due = [row.id for row in Delivery.select(Delivery.id).where(
        _claimable(now), Delivery.next_attempt <= now).order_by(
        Delivery.next_attempt, Delivery.id).limit(limit)]
    claimed = [delivery_id for delivery_id in due if Delivery.update(
        claimed_until=now + lease).where(Delivery.id == delivery_id, _claimable(now)).execute()]
    if not claimed:
        return []
    rows = Delivery.select(Delivery, Webhook.url, Webhook.secret, Webhook.disabled).join(
        Webhook, peewee.JOIN.LEFT_OUTER, on=(Delivery.hook == Webhook.id)).where(
        Delivery.id.in_(claimed)).objects()
    outgoing = []
    for row in rows:
        secret, problem = None, None
        if row.url is None:
            problem = "the webhook was deleted"
        elif row.disabled is not None:
            problem = "the webhook is disabled"
        else:
            try:
                secret = box.open(row.secret)["secret"]
            except JobJokerError:
                problem = "the webhook's secret cannot be opened with the server's key"
        outgoing.append(Outgoing(row.id, row.hook, row.job, row.body, row.attempts, row.url,
                                 secret, problem))
    return outgoing


def record(tx, delivery_id, attempts, code, error, delivered, final, delay, now):
    """Writer thread: the outcome of an attempt; pending again after a backoff, or settled."""
    if delivered or final:
        state, next_attempt, finished = ("delivered" if delivered else "failed"), None, now
    else:
        state, next_attempt, finished = "pending", now + backoff(delay, attempts), None
    Delivery.update(state=state, attempts=attempts, last_code=code, last_error=error,
                    next_attempt=next_attempt, claimed_until=None, finished=finished).where(
        Delivery.id == delivery_id, Delivery.state == "pending").execute()
    return state


def release(tx, delivery_ids):
    """Writer thread: give back claims (a stopping server's)."""
    if delivery_ids:
        Delivery.update(claimed_until=None).where(Delivery.id.in_(list(delivery_ids)),
                                                  Delivery.state == "pending").execute()


class WebhookSender:
    """Sends owed deliveries from the loop, never blocking it."""

    def __init__(self, storage, secret_box, config):
        self.storage = storage
        self.box = secret_box
        self.retries = config.webhook_retries
        self.delay = config.webhook_retry_delay
        self.timeout = config.webhook_timeout
        self.lease = 2 * self.timeout + 30.0  # longer than any attempt takes
        self._loop = None
        self._wakeup = None
        self._task = None
        self._client = None
        self._sending = {}  # delivery id -> its task

    def start(self):
        """Begin sending (on the loop): what a restart left pending goes first."""
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._client = tornado.httpclient.AsyncHTTPClient(
            force_instance=True, max_clients=MAX_IN_FLIGHT, max_body_size=MAX_REPLY_BYTES)
        self._task = detached(asyncio.ensure_future, self._run())
        return self

    def wake(self):
        """Look for due deliveries now (from any thread)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop sends nothing
                self._loop.call_soon_threadsafe(self._wakeup.set)

    async def stop(self):
        """Stop sending; the claims of deliveries cut short are given back."""
        tasks = [self._task, *self._sending.values()] if self._task else []
        cut_short = list(self._sending)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if cut_short:
            with contextlib.suppress(Exception):  # a lapsing claim does the same, later
                await self.storage.transaction(release, cut_short)
        if self._client is not None:
            self._client.close()
        self._task = self._client = None

    async def _run(self):
        while True:
            self._wakeup.clear()
            try:
                wait = await self._send_due()
            except DatabaseUnavailable:  # an outage, logged once by the storage
                wait = POLL_SECONDS
            except (JobJokerError, peewee.PeeweeException) as e:  # the database refused
                log.warning("webhook deliveries wait for the database: %s", e)
                wait = POLL_SECONDS
            except Exception:
                log.exception("sending webhook deliveries failed; trying again in %g s",
                              POLL_SECONDS)
                wait = POLL_SECONDS
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)

    async def _send_due(self):
        """Claim and start sending what is due; the seconds until it should look again."""
        free = MAX_IN_FLIGHT - len(self._sending)
        now = time.time()
        due = await self.storage.read(next_due, now)
        if free <= 0 or due is None or due > now:
            return POLL_SECONDS if due is None else min(max(due - now, 0.01), POLL_SECONDS)
        for outgoing in await self.storage.transaction(claim_due, now, free, self.lease,
                                                       self.box):
            task = asyncio.ensure_future(self._deliver(outgoing))
            self._sending[outgoing.id] = task
            task.add_done_callback(lambda _, key=outgoing.id: self._done(key))
        return 0.01 if len(self._sending) < MAX_IN_FLIGHT else POLL_SECONDS

    def _done(self, delivery_id):
        self._sending.pop(delivery_id, None)
        self._wakeup.set()  # a free slot: more may be sent

    async def _deliver(self, outgoing):
        """One attempt at ``outgoing``, and its outcome recorded."""
        attempts = outgoing.attempts + 1
        code, error, final = None, outgoing.problem, outgoing.problem is not None
        if not final:
            code, error = await self._post(outgoing)
        delivered = error is None
        final = final or attempts > self.retries
        state = await self.storage.transaction(record, outgoing.id, attempts, code, error,
                                               delivered, final, self.delay, time.time())
        log_outcome = log.info if delivered else log.warning
        log_outcome("webhook %s: delivery %s (job %s), attempt %d: %s%s", outgoing.hook,
                    outgoing.id, outgoing.job or "none: a test", attempts,
                    "delivered" if delivered else error, "" if delivered or state == "failed"
                    else "; tried again in %g s" % backoff(self.delay, attempts))

    async def _post(self, outgoing):
        """``(HTTP code or None, error or None)`` of one POST."""
        body = outgoing.body.encode("utf-8")
        event = JOB_EVENT if outgoing.job else TEST_EVENT
        headers = signed_headers(outgoing.id, event, outgoing.secret, body, int(time.time()))
        request = tornado.httpclient.HTTPRequest(
            outgoing.url, method="POST", headers=headers, body=body,
            connect_timeout=self.timeout, request_timeout=self.timeout, follow_redirects=False,
            user_agent="JobJoker/%s" % __version__, streaming_callback=lambda chunk: None)
        try:
            response = await self._client.fetch(request, raise_error=False)
        except Exception as e:  # a name that does not resolve, a TLS failure, a closed socket
            return None, "%s: %s" % (type(e).__name__, e)
        if response.code == 599:  # no HTTP reply: a timeout, a refused connection
            return None, str(response.error)
        if 200 <= response.code < 300:
            return response.code, None
        if 300 <= response.code < 400:
            return response.code, "HTTP %d: redirects are not followed; give the webhook " \
                                  "its final URL" % response.code
        return response.code, "HTTP %d %s" % (response.code, response.reason or "")
