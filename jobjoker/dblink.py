"""How long the server waits on a database link that went silent: bounded, for MySQL/MariaDB and
PostgreSQL alike.

Contract: ``connect_parameters(scheme)`` gives the driver's connect keywords for a database URL
of that scheme (``jobjoker.models.make_database`` passes them on), and for PostgreSQL installs
psycopg2's wait callback (``wait_for_reply``, once per process); ``unhurried(db)`` is a context
manager under which this thread's statements wait without the bound (the schema migration,
whose DDL may take minutes on a big table); ``tune_socket(sock)`` sets the kernel's keepalives
on a PyMySQL connection's socket. Imports nothing of ours.

A link can go silent without closing: packets dropped with no reset (a network partition, a
firewall or NAT whose state was flushed, a paused VM, a proxy in between that hangs). A thread
then waits for a reply that never comes; the kernel gives up only after its retransmission
timeout (about 15 minutes on Linux) and, on an idle connection, not for hours. Two bounds, each for
what the other cannot see:

- **Every reply within REPLY_SECONDS**, in the driver: PyMySQL's ``read_timeout`` and
  ``write_timeout``, and for psycopg2, whose blocking calls have no timeout, a wait callback
  (psycopg2's "green" mode: the same statements, but the driver waits through us) that gives
  up on a socket silent that long. A connection that timed out is closed by its driver, so the
  storage's threads (``jobjoker.dbthreads``) treat it as lost: a new connection, and the usual
  outage handling. This also sees a link that dies *behind* a proxy (pgbouncer, HAProxy, a cloud
  SQL proxy), where the kernel's own checks only reach the proxy. Its value: the server's
  statements take milliseconds, and requests are answered 503 after 2 s anyway
  (``jobjoker.storage.ANSWER_SECONDS``); what waits longer is the server's own work (ingestion,
  job ends), which retries. The one long wait a healthy database makes is for a lock another
  client holds: this server's writes run one at a time, and on MariaDB such a wait ends by
  itself after ``innodb_lock_wait_timeout`` (50 s by default), so a write that waits 30 s for a
  lock is given up and retried, which costs nothing. Migrations are exempt (``unhurried``).
- **The kernel's keepalives** (PostgreSQL through libpq's ``keepalives_*`` and
  ``tcp_user_timeout``; MySQL by ``tune_socket(sock)`` on each new PyMySQL socket, which has no
  setting for them): a connection idle or waiting on a dead peer is found out after about
  KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds, so an idle thread's next work
  reconnects at once rather than waiting out the reply bound; they never bound how long a live
  database may take to answer (its kernel answers the probes).

Connecting is bounded by CONNECT_SECONDS: PyMySQL's ``connect_timeout`` covers the TCP connect
(its handshake then falls under the reply bound); psycopg2 connects through the wait callback,
which allows each wait of the start-up that long (libpq's ``connect_timeout`` is passed too, for
any other libpq client of the same settings, but does not apply to a non-blocking connect).
"""
import contextlib
import select
import socket
import threading

CONNECT_SECONDS = 10
REPLY_SECONDS = 30.0
KEEPALIVE_IDLE = 10  # seconds idle before the first probe
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
# Unacknowledged data (a statement sent to a dead peer) gives up after this long (libpq >= 12).
TCP_USER_TIMEOUT_MS = 30000

_patience = threading.local()  # .unbounded: this thread's statements wait without the bound


def connect_parameters(scheme):
    """The connect keywords bounding a silent link for a database URL's ``scheme``."""
    if scheme.startswith("mysql"):
        return {"connect_timeout": CONNECT_SECONDS, "read_timeout": REPLY_SECONDS,
                "write_timeout": REPLY_SECONDS}
    if scheme.startswith("postgres"):
        return _postgresql_parameters()
    return {}


def tune_socket(sock):
    """The kernel's keepalives on a TCP socket to the database (not on a Unix socket)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE),
                          ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                          ("TCP_KEEPCNT", KEEPALIVE_COUNT),
                          ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_MS)):
        if hasattr(socket, option):  # Linux has them all; others some
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _postgresql_parameters():
    import psycopg2  # only where PostgreSQL is used: its driver is an extra
    import psycopg2.extensions
    if psycopg2.extensions.get_wait_callback() is not wait_for_reply:
        psycopg2.extensions.set_wait_callback(wait_for_reply)
    parameters = {"connect_timeout": CONNECT_SECONDS, "keepalives": 1,
                  "keepalives_idle": KEEPALIVE_IDLE,
                  "keepalives_interval": KEEPALIVE_INTERVAL,
                  "keepalives_count": KEEPALIVE_COUNT}
    if psycopg2.__libpq_version__ >= 120000:  # older libpq refuses the keyword
        parameters["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    return parameters


def wait_for_reply(connection):
    """psycopg2's wait callback: what its own blocking wait does, but giving up (with
    ``OperationalError``, after which psycopg2 closes the connection) when the socket stays
    silent for REPLY_SECONDS."""
    import psycopg2
    import psycopg2.extensions as ext
    if connection.status == ext.STATUS_SETUP:  # connecting: libpq's own timeout does not
        limit = CONNECT_SECONDS                  # apply to the non-blocking connect
    else:
        limit = None if getattr(_patience, "unbounded", False) else REPLY_SECONDS
    poller = None
    while True:
        state = connection.poll()
        if state == ext.POLL_OK:
            return
        if state == ext.POLL_READ:
            events = select.POLLIN
        elif state == ext.POLL_WRITE:
            events = select.POLLOUT
        else:
            raise psycopg2.OperationalError("unexpected state from poll(): %r" % state)
        if poller is None:
            poller = select.poll()  # not select(): the server's descriptors pass 1024
            poller.register(connection.fileno(), events)
        else:
            poller.modify(connection.fileno(), events)
        if not poller.poll(None if limit is None else limit * 1000):
            raise psycopg2.OperationalError(
                "the database sent nothing for %g s: the link is taken for dead" % limit)


@contextlib.contextmanager
def unhurried(db):
    """This thread's statements on ``db`` wait for their replies without the bound."""
    _patience.unbounded = True
    connection = db.connection()  # opened now if need be: its timeout is set per connection
    timeout = getattr(connection, "_read_timeout", None)  # PyMySQL's; read at each wait
    if timeout is not None:
        connection._read_timeout = None
    try:
        yield
    finally:
        _patience.unbounded = False
        if timeout is not None:
            connection._read_timeout = timeout
