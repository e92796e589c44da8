"""How the Python client reaches one server: its address, credentials and TLS, one request, and
what a failure becomes.

Contract: ``Transport(url, username, password, timeout, token, ca_cert)`` holds one server's
settings; anything left out comes from ``JOBJOKER_URL`` (default ``http://127.0.0.1:8080``),
``JOBJOKER_USER`` (default ``admin``), ``JOBJOKER_PASSWORD`` or ``JOBJOKER_TOKEN``, and
``JOBJOKER_CA_BUNDLE`` (an empty variable counts as unset); the environment's credentials are used
only when neither is passed in, and a URL that is not ``http(s)://HOST...`` is a ``ValueError``.
An ``https://`` server's certificate is checked against the CA certificates (PEM) in ``ca_cert``
when given (they replace the system's, as for a self-signed server), else the system's (which
``SSL_CERT_FILE`` also sets); a CA file that cannot be read is a ``ValueError`` naming it. A token
is sent as ``Authorization: Bearer``, else the user and password as HTTP Basic.
``exchange`` sends one request through the standard library, never retried (a repeated ``POST``
could create twice), and returns the reply's body and headers; ``stream_request`` is the request
that opens a WebSocket on a path. A refusal becomes the ``ClientError`` subclass for its status
(``error_for``) with the server's ``message``; a server that cannot be reached becomes
``ConnectionFailed``, and an untrusted certificate ``UntrustedCertificate`` saying how to trust
it (``unreachable``). ``jobjoker.client`` builds the REST calls on this, ``jobjoker.client_follow``
the following of a job's stream.
"""
import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

import tornado.httpclient

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_USER = "admin"
CA_BUNDLE_VARIABLE = "JOBJOKER_CA_BUNDLE"
HOSTNAME_MISMATCH = 62  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, in SSLCertVerificationError


class ClientError(Exception):
    """A request failed; ``status`` is the HTTP status (None when no reply came) and
    ``message`` the server's explanation."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


class ConnectionFailed(ClientError):
    """The server could not be reached, or did not answer in time."""


class UntrustedCertificate(ConnectionFailed):
    """The server's TLS certificate is not signed by a trusted CA (``--ca-cert``); retrying
    cannot change that, so ``follow`` raises it at once."""


class BadRequestError(ClientError):
    """The server refused the request as malformed or invalid (400, 405, 413, 422)."""


class AuthError(ClientError):
    """No valid credentials (401), not allowed (403), or too many failed logins (429)."""


class NotFoundError(ClientError):
    """No such job, worker or route (404)."""


class ConflictError(ClientError):
    """The job's state forbids the request (409), e.g. starting a job that has already run."""


class ServerError(ClientError):
    """The server failed (500) or a dependency of it is away (503); trying later may work."""


def error_for(status, message):
    """The ``ClientError`` subclass for an HTTP status."""
    if status in (401, 403, 429):
        return AuthError(message, status)
    if status == 404:
        return NotFoundError(message, status)
    if status == 409:
        return ConflictError(message, status)
    if status >= 500:
        return ServerError(message, status)
    return BadRequestError(message, status)


def message_of(body, status, reason=""):
    """The server's ``message`` from an error envelope, or a description of the reply."""
    try:
        message = json.loads(body)["message"]
        if message:
            return message
    except (ValueError, TypeError, KeyError):
        pass
    return "HTTP %s %s" % (status, reason or "")


class Transport:
    """One server's address, credentials and TLS settings, and one request to it."""

    def __init__(self, url=None, username=None, password=None, timeout=30, token=None,
                 ca_cert=None):
        self.url = (url or os.environ.get("JOBJOKER_URL") or DEFAULT_URL).rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the server URL must look like http://HOST:PORT (got %r)"
                             % self.url)
        self.username = username or os.environ.get("JOBJOKER_USER") or DEFAULT_USER
        if password is None and token is None:
            password = os.environ.get("JOBJOKER_PASSWORD") or None
            token = os.environ.get("JOBJOKER_TOKEN") or None
        self.password = password
        self.token = token
        self.timeout = timeout
        self.ca_cert = ca_cert or os.environ.get(CA_BUNDLE_VARIABLE) or None
        self.tls_context = tls_context(self.ca_cert) if parts.scheme == "https" else None

    def __repr__(self):  # never the password or the token
        return "%s(%r, %s)" % (type(self).__name__, self.url,
                               "token" if self.token else "user %r" % self.username)

    def _headers(self):
        if self.token:
            return {"Authorization": "Bearer " + self.token}
        if self.password is None:
            return {}  # the server answers 401, which says what is missing
        credentials = "%s:%s" % (self.username, self.password)
        return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}

    def exchange(self, method, path, body=None, content_type=None, **query):
        """Send one request; the reply's body (bytes) and headers, or a ``ClientError``."""
        query = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = self._headers()
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self.tls_context) as reply:
                return reply.read(), reply.headers
        except urllib.error.HTTPError as e:
            raise error_for(e.code, message_of(e.read(), e.code, e.reason)) from None
        except (urllib.error.URLError, OSError) as e:  # refused, unknown host, timeout, reset
            raise self.unreachable(getattr(e, "reason", e)) from None

    def stream_request(self, path, query):
        """The request that opens a WebSocket on ``path`` (``ws://`` or ``wss://``) with the
        ``query`` parameters, these credentials, timeouts and TLS settings."""
        base = "ws" + self.url[len("http"):]  # http -> ws, https -> wss
        return tornado.httpclient.HTTPRequest(
            "%s%s?%s" % (base, path, urllib.parse.urlencode(query)), headers=self._headers(),
            connect_timeout=self.timeout, request_timeout=self.timeout,
            ssl_options=self.tls_context)

    def unreachable(self, reason):
        """The ``ConnectionFailed`` for ``reason``; an untrusted certificate says what to do."""
        if isinstance(reason, ssl.SSLCertVerificationError) and \
                reason.verify_code == HOSTNAME_MISMATCH:  # a CA would not help
            return UntrustedCertificate(
                "the TLS certificate of the JobJoker server at %s is for another name (%s): "
                "use the host name it was made for in the URL" % (self.url, reason.verify_message))
        if isinstance(reason, ssl.SSLCertVerificationError):
            return UntrustedCertificate(
                "the TLS certificate of the JobJoker server at %s is not trusted (%s): give "
                "the CA certificate that signed it (for a self-signed server, its own "
                "certificate) with --ca-cert PATH or %s=PATH%s"
                % (self.url, reason.verify_message or reason, CA_BUNDLE_VARIABLE,
                   " (now: %s)" % self.ca_cert if self.ca_cert else ""))
        return ConnectionFailed("cannot reach the JobJoker server at %s: %s"
                                % (self.url, reason))


def tls_context(ca_cert):
    """The TLS settings for ``https://`` servers: the system's CA certificates, or only those in
    the PEM file ``ca_cert``; a file that cannot be read is a ``ValueError`` naming it."""
    if not ca_cert:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_cert)
    except (OSError, ssl.SSLError) as e:
        raise ValueError("cannot read the CA certificates in %s (--ca-cert or %s): %s"
                         % (ca_cert, CA_BUNDLE_VARIABLE, e)) from None


def quote(segment):
    """A path segment, escaped so that a name can never reach another route."""
    return urllib.parse.quote(str(segment), safe="")
