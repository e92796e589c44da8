"""The client's address and scheme behind a trusted reverse proxy (``--trust-proxy``).

Contract: ``from_proxy(app)`` wraps a Tornado application for ``HTTPServer`` so that each
request's ``remote_ip`` is the right-most address of ``X-Forwarded-For`` and its ``protocol`` the
right-most value of ``X-Forwarded-Proto``: exactly the two headers SECURITY.md's nginx block sets
(overwriting whatever the client sent), the right-most entry being the one the proxy itself
wrote. Nothing else is read. Tornado's own ``xheaders`` is not used because it prefers
``X-Real-Ip`` and ``X-Scheme``, which a proxy that does not set them passes through from the
client: a client could pick its address (escaping the login throttle) and scheme (dropping
``Secure`` from the session cookie). A request without the headers keeps the connection's own.
"""
import tornado.httputil
import tornado.netutil

ADDRESS_HEADER = "X-Forwarded-For"
SCHEME_HEADER = "X-Forwarded-Proto"


def last_entry(headers, name):
    """The right-most comma-separated entry of header ``name``, or None."""
    values = headers.get_list(name)
    if not values:
        return None
    return values[-1].split(",")[-1].strip() or None


class _FromProxy(tornado.httputil.HTTPMessageDelegate):
    """One request: the connection's address and scheme replaced while it lasts."""

    def __init__(self, delegate, request_conn):
        self.delegate = delegate
        self.context = request_conn.context
        self.original = None

    def headers_received(self, start_line, headers):
        context = self.context
        self.original = (context.remote_ip, context.protocol)
        address = last_entry(headers, ADDRESS_HEADER)
        if address and tornado.netutil.is_valid_ip(address):
            context.remote_ip = address
        scheme = (last_entry(headers, SCHEME_HEADER) or "").lower()
        if scheme in ("http", "https"):
            context.protocol = scheme
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        self.delegate.finish()
        self._restore()

    def on_connection_close(self):
        self.delegate.on_connection_close()
        self._restore()

    def _restore(self):
        # The context belongs to the connection: the next request on it starts from scratch.
        if self.original is not None:
            self.context.remote_ip, self.context.protocol = self.original
            self.original = None


class _TrustedProxy(tornado.httputil.HTTPServerConnectionDelegate):
    def __init__(self, app):
        self.app = app

    def start_request(self, server_conn, request_conn):
        return _FromProxy(self.app.start_request(server_conn, request_conn), request_conn)

    def on_close(self, server_conn):
        self.app.on_close(server_conn)


def from_proxy(app):
    """``app`` for an ``HTTPServer`` whose clients all come through the trusted proxy."""
    return _TrustedProxy(app)
