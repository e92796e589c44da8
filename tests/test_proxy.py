"""Behind nginx and under a path prefix (issue 14, item 3).

A real nginx (Debian's package) runs in the foreground with its own configuration in a temp
folder, on a high port that is not 443, TLS with a certificate the test makes, in front of a
real server process. Its ``server`` block is the one in docs/deploy.md, read from there so that
the documentation and the test cannot drift apart; the test changes only the port, the
certificate, the upstream port and, for a prefix, the location. Through it: sign-in, the
``/events`` WebSocket, a job's stream, the client and the command line, at the root and under
``--base-path /jobjoker``. With ``$host`` (the old block) the socket is refused, the server's log
names the origin, and the page in Chromium says so instead of reconnecting forever. Without
nginx, the page under ``--base-path`` loads its files, calls and sockets under the prefix.
"""
import asyncio
import base64
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys

import pytest
import tornado.httpclient
import tornado.websocket

from jobjoker.client import Client
from jobjoker.config import load_config
from jobjoker.errors import StartupError
from tests.support import PASSWORD, ROOT, ServerProcess, call, cookies_of, free_port, \
    self_signed_certificate, unavailable, until, wait_for_end
# Chromium, launched once for the module as the browser tests launch it.
from tests.test_browser import WAIT_MS, browser, expect  # noqa: F401 (browser: a fixture)

NGINX = "/usr/sbin/nginx"
PREFIX = "/jobjoker"


# --- the documented block ------------------------------------------------------------------

def documented_block():
    """The nginx ``server`` block of docs/deploy.md's "Behind nginx" section: its only one."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("\n## Behind nginx\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```nginx\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "docs/deploy.md's nginx section should hold one nginx block"
    return blocks[0]


def substitute(text, old, new):
    """``text`` with its one ``old`` replaced: a block that changed shape fails here, loudly,
    rather than testing something else."""
    assert text.count(old) == 1, "the documented nginx block no longer holds %r once" % old
    return text.replace(old, new)


def block_for(upstream_port, listen, certificate, prefix="", host="$http_host"):
    """The documented block for this test: listening on ``listen`` (``PORT ssl`` or
    ``PORT``), passing to ``upstream_port``, under ``prefix``, with ``host`` as the Host."""
    block = documented_block()
    block = substitute(block, "listen 443 ssl;", "listen 127.0.0.1:%s;" % listen)
    block = substitute(block, "/etc/ssl/certs/jobs.example.com.pem", str(certificate[0]))
    block = substitute(block, "/etc/ssl/private/jobs.example.com.key", str(certificate[1]))
    block = substitute(block, "proxy_pass http://127.0.0.1:8080;",
                       "proxy_pass http://127.0.0.1:%d;" % upstream_port)
    if prefix:
        block = substitute(block, "location / {", "location %s/ {" % prefix)
    if host != "$http_host":
        block = substitute(block, "proxy_set_header Host $http_host;",
                           "proxy_set_header Host %s;" % host)
    return block


class Nginx:
    """nginx in the foreground (``daemon off``), every file of its own in ``folder``."""

    def __init__(self, folder, server_block, port):
        self.folder, self.port = folder, port
        folder.mkdir()
        # As root, nginx's workers would switch to nobody, who cannot use the temp folders.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "".join("%s_temp_path %s;\n" % (name, folder / name)
                       for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (folder / "nginx.conf").write_text(
            "%sworker_processes 1;\npid %s;\nevents { worker_connections 256; }\n"
            "http {\naccess_log %s;\n%s%s\n}\n"
            % (user, folder / "nginx.pid", folder / "access.log", temp, server_block))
        self.error_log = folder / "error.log"
        self.process = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e",
             str(self.error_log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        until(self.accepting, 60, "nginx to listen on port %d" % port)

    def accepting(self):
        if self.process.poll() is not None:
            raise AssertionError("nginx exited %s: %s" % (
                self.process.returncode, self.error_log.read_text()
                if self.error_log.exists() else ""))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown, workers included
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class PrefixedServer(ServerProcess):
    """A server under ``--base-path``: its ``url`` (and so its ``call``) has the prefix."""

    def __init__(self, root, *args, prefix, **options):
        self.prefix = prefix
        super().__init__(root, "--base-path", prefix, *args, **options)

    @property
    def url(self):
        return super().url + self.prefix


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("proxy-tls"))


@pytest.fixture
def nginx(tmp_path, certificate):
    """``nginx(upstream_port, prefix="", host="$http_host", tls=True)``: the documented
    block running; its base address (``https://127.0.0.1:PORT`` + prefix)."""
    if not os.access(NGINX, os.X_OK):
        unavailable("nginx is not installed at %s (apt-get install nginx)" % NGINX)
    started = []

    def start(upstream_port, prefix="", host="$http_host", tls=True):
        port = free_port()
        block = block_for(upstream_port, "%d ssl" % port if tls else port, certificate,
                          prefix, host)
        started.append(Nginx(tmp_path / ("nginx-%d" % port), block, port))
        return "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, prefix)
    yield start
    for instance in started:
        instance.stop()


def proxied_server(tmp_path, prefix, *args):
    """A server as it runs behind the proxy: on loopback, trusting its headers."""
    if prefix:
        return PrefixedServer(tmp_path, "--trust-proxy", "yes", *args, prefix=prefix)
    return ServerProcess(tmp_path, "--trust-proxy", "yes", *args)


# --- the prefix, in the server ------------------------------------------------------------

@pytest.mark.gen_test
@pytest.mark.parametrize("config_overrides", [{"base_path": PREFIX + "/"}])
async def test_under_a_base_path_every_route_moves_under_it(api, config_overrides):
    assert (await api("GET", PREFIX + "/health", auth=None)).code == 200
    outside = await api("GET", "/health")  # (unknown paths need credentials, then 404)
    assert outside.code == 404 and outside.json["success"] is False
    bare = await api("GET", PREFIX, auth=None)
    assert bare.code == 302 and bare.headers["Location"] == PREFIX + "/"
    assert "Content-Security-Policy" in bare.headers
    page = await api("GET", PREFIX + "/", auth=None, headers={"Accept": "text/html"})
    assert page.code == 302 and page.headers["Location"] == PREFIX + "/login"
    created = await api("POST", PREFIX + "/jobs", {"worker": "Foobar"})
    assert created.headers["Location"] == "%s/jobs/%s" % (PREFIX, created.data[0]["id"])
    document = await api("GET", PREFIX + "/openapi.json")
    assert json.loads(document.body)["servers"] == [{"url": PREFIX}]
    login = await api("POST", PREFIX + "/session", {"username": "admin", "password": PASSWORD},
                      auth=None)
    for name, (_, header) in cookies_of(login).items():
        assert "Path=%s;" % PREFIX in header + ";", header  # not the host's other paths


@pytest.mark.parametrize("value", ["jobjoker", "/a/../b", "/a//b", "/job joker", "/%2e"])
def test_a_base_path_must_be_a_plain_path(value):
    with pytest.raises(StartupError) as refused:
        load_config({"base_path": value}, environ={})
    assert "--base-path" in refused.value.message and "e.g. /jobjoker" in refused.value.message
    assert load_config({}, environ={"JOBJOKER_BASE_PATH": "/"}).base_path == ""


# --- through nginx -------------------------------------------------------------------------

async def open_socket(url, headers, certificate):
    request = tornado.httpclient.HTTPRequest(
        url.replace("https://", "wss://").replace("http://", "ws://"), headers=headers,
        request_timeout=60, ssl_options=ssl.create_default_context(cafile=str(certificate[0])))
    return await tornado.websocket.websocket_connect(request)


async def next_event(connection, kind):
    while True:
        message = await asyncio.wait_for(connection.read_message(), 60)
        assert message is not None, "the socket closed"
        event = json.loads(message)
        if event["type"] == "job" and event["action"] == kind:
            return event


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_the_documented_nginx_block_works_on_a_port_that_is_not_443(tmp_path, nginx,
                                                                    certificate, prefix):
    server = proxied_server(tmp_path, prefix)
    try:
        server.wait_ready()
        base = nginx(server.port, prefix)
        context = ssl.create_default_context(cafile=str(certificate[0]))
        # Sign in as the page does: the proxy says https, so both cookies are Secure.
        login = call(base, "POST", "/session", {"username": "admin", "password": PASSWORD},
                     auth=None, context=context)
        assert login.code == 201, login
        jar = cookies_of(login)
        for name in ("jobjoker_session", "_xsrf"):
            assert "Secure" in jar[name][1] and "Path=%s;" % (prefix or "/") in \
                jar[name][1] + ";", jar[name]
        cookie = {"Cookie": "jobjoker_session=%s" % jar["jobjoker_session"][0]}
        page = call(base, "GET", "/", auth=None, headers=cookie, context=context)
        assert page.code == 200 and b'src="static/js/main.js"' in page.body
        assert call(base, "GET", "/static/js/api.js", auth=None, headers=cookie,
                    context=context).code == 200
        origin = base[:len(base) - len(prefix)]  # the page's origin: scheme, host and port
        asked = call(base, "GET", "/streams/origin?origin=" + origin, auth=None, headers=cookie,
                     context=context)
        assert asked.data == [{"origin": origin, "host": origin.split("//")[1],
                               "allowed": True}]

        async def follow_events():
            # As a browser opens it: the session cookie, and the page's origin (no
            # Sec-Fetch-Site, as plain HTTP or an older browser sends it).
            events = await open_socket(base + "/events", dict(cookie, Origin=origin),
                                       certificate)
            client = Client(base, "admin", PASSWORD, ca_cert=str(certificate[0]))
            job = client.create_job("Foobar", start=True)
            created = await next_event(events, "created")
            events.close()
            return client, job, created
        client, job, created = asyncio.run(follow_events())
        assert created["job"]["id"] == job["id"]
        # A job's stream through the proxy, with the Python client (wss:// with the prefix).
        streamed = list(client.follow(job["id"]))
        assert "foobar" in [e.message for e in streamed if e.kind == "log"]
        assert streamed[-1].kind == "end" and streamed[-1].status == "done"
        listed = subprocess.run(
            [sys.executable, "-m", "jobjoker.cli", "jobs", "ls", "--json", "--url", base,
             "--ca-cert", str(certificate[0])], capture_output=True, text=True, timeout=60,
            cwd=ROOT, env={"PATH": "/usr/bin:/bin", "JOBJOKER_PASSWORD": PASSWORD})
        assert listed.returncode == 0, listed
        assert job["id"] in listed.stdout
    finally:
        server.discard()


def test_with_host_instead_of_http_host_sockets_are_refused_and_the_log_says_why(
        tmp_path, nginx, certificate):
    server = proxied_server(tmp_path, "")
    try:
        server.wait_ready()
        base = nginx(server.port, host="$host")  # the block as it was: the port is dropped
        basic = "Basic " + base64.b64encode(("admin:" + PASSWORD).encode()).decode()
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            asyncio.run(open_socket(base + "/events", {"Origin": base, "Authorization": basic},
                                    certificate))
        assert refused.value.code == 403
        context = ssl.create_default_context(cafile=str(certificate[0]))
        asked = call(base, "GET", "/streams/origin?origin=" + base, context=context,
                     auth=server.auth)
        assert asked.data[0]["allowed"] is False and asked.data[0]["host"] == "127.0.0.1"
        assert "$http_host" in asked.json["message"]
        assert "--allowed-origins" in asked.json["message"]
        # The server's log names the origin it saw, the host it compared it with, and the fix.
        line = until(lambda: next((line for line in server.stderr.splitlines()
                                   if "GET /events refused" in line), None), 60,
                     "the refusal in the server's log")
        assert repr(base) in line and "'127.0.0.1'" in line and "--allowed-origins" in line
    finally:
        server.discard()


# --- the page in a browser -----------------------------------------------------------------

def signed_in_page(browser, base, requests=None):
    """A tab that opened ``base`` without credentials, was sent to the form, and signed in."""
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    if requests is not None:
        page.on("request", lambda request: requests.append(request.url))
    page.goto(base)  # the bare prefix, without its slash, leads to the page too
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#login-username", "admin")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    expect(page).to_have_url(base + "/#jobs")
    return page


def test_the_page_says_when_its_origin_is_refused(tmp_path, nginx, browser):
    server = proxied_server(tmp_path, "")
    try:
        server.wait_ready()
        base = nginx(server.port, host="$host")  # as reported: TLS on a port but 443
        page = signed_in_page(browser, base)
        connection = page.locator("#connection")
        expect(connection).to_have_attribute("data-state", "refused")
        expect(connection).to_contain_text("this origin is not allowed; see --allowed-origins")
        assert repr(base) in connection.get_attribute("title")  # the server's own message
        assert "GET /events refused: WebSockets from the origin %r" % base in server.stderr
        page.context.close()
    finally:
        server.discard()


@pytest.mark.parametrize("behind", ["direct", "nginx"])
def test_the_page_works_under_a_base_path(tmp_path, nginx, browser, behind):
    server = PrefixedServer(tmp_path, "--trust-proxy", "yes", prefix=PREFIX)
    try:
        server.wait_ready()
        assert "listening on %s/" % server.url in server.stderr  # where to sign in
        base = server.url if behind == "direct" else nginx(server.port, PREFIX)
        job = Client(server.url, "admin", PASSWORD).create_job("TestWorker", {"count": 3,
                                                                             "sleep": 0},
                                                               start=True)
        requests = []
        page = signed_in_page(browser, base, requests)
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        page.goto(base + "/#jobs/" + job["id"])
        expect(page.locator("#job-detail-facts .job-id")).to_have_text(job["id"])
        expect(page.locator("#job-log-lines .line-text").filter(
            has_text=re.compile(r"^log 2$"))).to_have_count(1)
        expect(page.locator("#job-detail-status")).to_have_text("done")
        download = page.locator("#job-detail a[download]").first.get_attribute("href")
        assert download.startswith(PREFIX + "/jobs/"), download
        # Every file, call and socket of the page went under the prefix.
        origin = base[:len(base) - len(PREFIX)]
        outside = [url for url in requests if not url.startswith(base + "/")
                   and url != base and not url.startswith("data:")]
        assert not outside, outside
        assert any(url.startswith(origin + PREFIX + "/static/js/") for url in requests)
        page.context.close()
        assert wait_for_end(Client(server.url, "admin", PASSWORD), job["id"])["status"] == "done"
    finally:
        server.discard()
