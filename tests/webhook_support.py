"""What the webhook tests share: a real HTTP receiver (``Receiver``), how a receiver checks a
signature (``signature_of``), and the webhook calls that tests/test_openapi.py checks against
the document (``exercise_webhooks``)."""
import collections
import hashlib
import hmac
import http.server
import threading


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


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    """Records each request, then answers as its server's plan says."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        receiver = self.server.receiver
        answer = receiver.next_answer()
        receiver.record(self.path, self.headers, body)  # case-insensitive
        if answer == "hang":
            receiver.released.wait(60)
            return
        self.send_response(answer)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Receiver:
    """A real HTTP server on 127.0.0.1 (its own threads) that records what it is sent and
    answers each request with the next of ``plan`` (a status, or "hang": no answer until
    ``release()``), then with ``status``."""

    def __init__(self, port=0):
        self.requests = []
        self.plan = []
        self.status = 200
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), ReceiverHandler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def next_answer(self):
        with self._lock:
            return self.plan.pop(0) if self.plan else self.status

    def record(self, path, headers, body):
        with self._lock:
            self.requests.append(Received(path, headers, body))

    def received(self, path=None):
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def reset(self):
        self.release()
        with self._lock:
            self.requests, self.plan, self.status = [], [], 200
        self.released = threading.Event()

    def release(self):
        self.released.set()

    def close(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


Received = collections.namedtuple("Received", "path headers body")


def signature_of(secret, headers, body):
    """What a receiver computes to check a delivery (as docs/webhooks.md shows): the HMAC-SHA256
    with the secret of ``<timestamp>.<body>``."""
    message = headers["X-JobJoker-Timestamp"].encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
