"""A TCP proxy a test puts between the server and its database, to cut the link and restore it.

Contract: ``LinkProxy(host, port)`` listens on a free port of 127.0.0.1 (``port`` attribute) and
forwards every connection to ``host:port``, with threads (two per connection). ``cut()`` closes
every proxied connection and stops listening, so new connections are refused, as when the
database's host goes away. ``blackhole()`` makes the link silent without closing anything, as a
network partition or a firewall that lost its state does: every byte either way is read and
dropped, on the connections open now and on those accepted meanwhile (their upstream is never
dialled). ``restore()`` listens again on the same port after a cut, and after a blackhole lets
new connections through; the ones silenced stay silent until their client closes them (as a flow
a firewall forgot stays dropped). ``close()`` ends it all. ``url_for(url)`` rewrites a database
URL to go through it. Nothing here knows JobJoker.
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
        self._silent = False  # blackholed: new connections are silenced too
        self._silenced = set()  # the client sockets of the links silenced
        self._links = {}  # client socket -> its upstream socket
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
            with self._lock:
                if self._silent:  # never dialled: the client's bytes go nowhere
                    self._silenced.add(client)
                    self._sockets.add(client)
                    threading.Thread(target=self._pump, args=(client, None),
                                     daemon=True).start()
                    continue
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
                self._links[client] = upstream
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, client),
                                 daemon=True).start()

    def _pump(self, source, sink, client=None):
        client = client or source
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if sink is not None and client not in self._silenced:
                    sink.sendall(data)
        except OSError:
            pass
        if source is not client and client in self._silenced:
            self._drop(source)  # the far end closed: a silent link tells the client nothing
        else:
            self._drop(client, self._links.pop(client, None))

    def _drop(self, *sockets):
        with self._lock:
            for sock in sockets:
                if sock is not None and sock in self._sockets:
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

    def blackhole(self):
        """Make every link silent, the open ones and the new ones; close nothing."""
        with self._lock:
            self._silent = True
            self._silenced.update(self._links)

    def restore(self):
        """Accept connections again, on the same port (after a cut), or let new ones through
        (after a blackhole: the links silenced stay so)."""
        with self._lock:
            self._silent = False
            listening = self._listener is not None
        if not listening:
            self._listen()

    def close(self):
        self.cut()
