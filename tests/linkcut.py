"""A TCP proxy a test puts between the server and its database, to cut the link and restore it.

Contract: ``LinkProxy(host, port)`` listens on a free port of 127.0.0.1 (``port`` attribute)
and forwards every connection to ``host:port``, with threads (two per connection). ``cut()``
closes every proxied connection and stops listening, so new connections are refused, as when
the database's host goes away; ``restore()`` listens again on the same port. ``close()`` ends
it all. ``url_for(url)`` rewrites a database URL to go through it. Nothing here knows JobJoker.
"""
import socket
import threading
import urllib.parse


class LinkProxy:
    """Forwards TCP connections to one address until cut; can be restored on the same port."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.port = None
        self._lock = threading.Lock()
        self._sockets = set()  # every open socket: the listener and both ends of each link
        self._listener = None
        self._listen()

    def url_for(self, url):
        """``url`` with its host and port replaced by this proxy's."""
        parts = urllib.parse.urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = "%s127.0.0.1:%d" % (credentials + "@" if credentials else "", self.port)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    def _listen(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
            self._sockets.add(listener)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut() or close()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        self._drop(source, sink)

    def _drop(self, *sockets):
        with self._lock:
            for sock in sockets:
                if sock in self._sockets:
                    self._sockets.discard(sock)
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()

    def cut(self):
        """Close every proxied connection and refuse new ones."""
        with self._lock:
            self._listener = None
            sockets = list(self._sockets)
        self._drop(*sockets)

    def restore(self):
        """Accept connections again, on the same port."""
        self._listen()

    def close(self):
        self.cut()
