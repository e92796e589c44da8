"""Client connections, bounded: a cap in total and per address, idle ones closed, and an accept
loop that survives running out of file descriptors.

Contract: ``raise_fd_limit()`` raises the soft ``RLIMIT_NOFILE`` to the hard one (at start, once)
and returns it. ``connection_cap(config, fd_limit)`` is the most client connections the server
keeps open: ``--max-connections``, or three quarters of the fd limit, and never so many that
jobs' spools, the database and the supervisor are left without descriptors.
``GuardedHTTPServer`` is Tornado's ``HTTPServer`` that closes at once a connection past the
total cap or past ``--max-connections-per-address`` from one address (with a bare 503 on plain
HTTP), counts a connection until its socket is closed (WebSockets included), and, when
``accept()`` fails for want of descriptors or memory, stops accepting for ``ACCEPT_PAUSE``
seconds instead of spinning on a listening socket that stays readable. Every refusal and
failure is logged at most once a minute per kind (``LogThrottle``), with a count. Idle
connections (waiting for a request's headers) are closed by Tornado after
``--idle-connection-timeout``; a body must arrive within ``BODY_TIMEOUT``.

It overrides two of Tornado's internals, ``TCPServer._handle_connection`` (called by our own
accept loop) and the ``_sockets``/``_handlers`` maps that ``stop()`` reads.
"""
import collections
import errno
import logging
import resource

import tornado.httpserver
from tornado.ioloop import IOLoop

from jobjoker.logthrottle import LogThrottle

log = logging.getLogger(__name__)
throttle = LogThrottle(log, interval=60.0)

ACCEPT_PAUSE = 1.0  # seconds without accepting once the fd table (or memory) is exhausted
ACCEPT_BATCH = 128  # connections accepted per wake-up, so the loop serves others in between
BODY_TIMEOUT = 300.0  # seconds a request body may take to arrive
FD_RESERVE_MIN = 64  # descriptors kept for jobs, spools, the database, the supervisor
RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
           b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s")


def raise_fd_limit():
    """Raise the soft limit on open files to the hard one; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, e)
    return soft


def connection_cap(config, fd_limit):
    """The most client connections to keep open under ``fd_limit`` descriptors."""
    room = max(1, fd_limit - max(FD_RESERVE_MIN, fd_limit // 4))
    if config.max_connections:
        if config.max_connections > room:
            log.warning("--max-connections %d leaves too few of the %d file descriptors for "
                        "jobs and the database: using %d", config.max_connections, fd_limit,
                        room)
        return min(config.max_connections, room)
    return room


class GuardedHTTPServer(tornado.httpserver.HTTPServer):
    """An ``HTTPServer`` with connection caps and an accept loop that cannot spin."""

    def initialize(self, *args, max_connections=1024, max_per_address=0, **kwargs):
        kwargs.setdefault("body_timeout", BODY_TIMEOUT)
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.max_per_address = max_per_address  # 0: no cap per address
        self.open_connections = 0
        self.per_address = collections.Counter()

    def add_sockets(self, sockets):
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock):
        """Accept on ``sock`` from the loop; returns the function that stops it."""
        loop = IOLoop.current()
        state = {"removed": False, "paused": False}

        def accept(fd, events):
            for _ in range(ACCEPT_BATCH):
                if state["removed"] or state["paused"]:
                    return
                try:
                    connection, address = sock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as e:
                    if e.errno not in RESOURCE_ERRORS:
                        raise
                    # The socket stays readable: without a pause this is a busy loop.
                    throttle.log("accept", logging.ERROR, "cannot accept connections (%s): "
                                 "paused for %g s; %d are open", e.strerror, ACCEPT_PAUSE,
                                 self.open_connections)
                    state["paused"] = True
                    loop.remove_handler(sock)
                    loop.call_later(ACCEPT_PAUSE, resume)
                    return
                self._admit(connection, address)

        def resume():
            state["paused"] = False
            if not state["removed"]:
                loop.add_handler(sock, accept, IOLoop.READ)

        def remove():
            if not state["paused"] and not state["removed"]:
                loop.remove_handler(sock)
            state["removed"] = True

        loop.add_handler(sock, accept, IOLoop.READ)
        return remove

    def _admit(self, connection, address):
        peer = _peer(address)
        if self.open_connections >= self.max_connections:
            why = "the server holds its most connections (%d, --max-connections)" \
                % self.max_connections
        elif self.max_per_address and self.per_address[peer] >= self.max_per_address:
            why = "%s holds its most connections (%d, --max-connections-per-address)" \
                % (peer, self.max_per_address)
        else:
            self._handle_connection(connection, address)
            return
        throttle.log("refused:" + why.split(" ", 1)[0], logging.WARNING,
                     "refused a connection from %s: %s", peer, why)
        self._refuse(connection, why)

    def _refuse(self, connection, why):
        try:
            if self.ssl_options is None:
                connection.setblocking(False)
                text = why.encode() + b"\n"
                connection.send(REFUSAL % (len(text), text))
        except OSError:
            pass  # best effort: the close below is the refusal
        finally:
            connection.close()

    def handle_stream(self, stream, address):
        peer = _peer(address)
        self.open_connections += 1
        self.per_address[peer] += 1
        close_fd = stream.close_fd

        def close_and_count():  # the socket's end, whatever closed it (HTTP or WebSocket)
            try:
                close_fd()
            finally:
                self.open_connections -= 1
                self.per_address[peer] -= 1
                if self.per_address[peer] <= 0:
                    del self.per_address[peer]
        stream.close_fd = close_and_count
        super().handle_stream(stream, address)


def _peer(address):
    return address[0] if isinstance(address, tuple) and address else str(address)
