"""Exposure: Host-header and origin checks, WebSocket message limits, TLS, the loud warning
without it, and jobs dropping root."""
import os
import pwd
import ssl
import subprocess
import sys

import pytest
import tornado.httpclient
import tornado.websocket

from tests.support import IN_CI, ROOT


@pytest.mark.gen_test
async def test_a_foreign_host_header_is_refused_on_loopback(api):
    rebound = await api("GET", "/jobs", headers={"Host": "evil.example:8080"})
    assert rebound.code == 403 and "--allowed-hosts" in rebound.json["message"]
    login = await api("POST", "/session", {"username": "admin", "password": "x"}, auth=None,
                      headers={"Host": "evil.example"})
    assert login.code == 403  # before any password is looked at
    for host in ("localhost:1", "127.0.0.1", "[::1]:80"):
        assert (await api("GET", "/jobs", headers={"Host": host})).code == 200, host


@pytest.mark.gen_test
@pytest.mark.parametrize("config_overrides", [{"allowed_hosts": "jobs.internal",
                                               "allowed_origins": "https://ui.example"}])
async def test_allowed_hosts_and_origins_extend_the_checks(api, ws_connect):
    assert (await api("GET", "/jobs", headers={"Host": "jobs.internal"})).code == 200
    assert (await api("GET", "/jobs", headers={"Host": "other.internal"})).code == 403
    connection = await ws_connect("/events", headers={"Origin": "https://ui.example"})
    connection.close()
    with pytest.raises(tornado.httpclient.HTTPClientError) as caught:
        await ws_connect("/events", headers={"Origin": "https://evil.example"})
    assert caught.value.code == 403


@pytest.mark.gen_test
async def test_an_oversized_websocket_message_closes_with_1009(ws_connect):
    connection = await ws_connect("/events")
    connection.write_message("x" * (64 * 1024 + 1))
    assert await connection.read_message() is None
    assert connection.close_code == 1009


def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def test_tls_serves_https_and_marks_the_session_cookie_secure(tmp_path, servers):
    cert, key = self_signed(tmp_path)
    server = servers(password="pw", tls=(cert, key)).wait_ready()  # /health over HTTPS
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    login = server.call("POST", "/session", {"username": "admin", "password": "pw"}, auth=None,
                        context=context)
    assert login.code == 201, login
    session = [c for c in login.headers.get_list("Set-Cookie")
               if c.startswith("jobjoker_session=")][0]
    assert "Secure" in session and "HttpOnly" in session
    assert "listening on https://" in server.stderr
    assert "WITHOUT TLS" not in server.stderr
    assert server.stop() == 0


def test_listening_beyond_loopback_without_tls_warns_loudly(servers):
    server = servers("--host", "0.0.0.0", password="pw")
    server.wait_ready()
    assert "LISTENING ON 0.0.0.0 WITHOUT TLS" in server.stderr
    assert server.stop() == 0


def test_tls_needs_both_files():
    result = subprocess.run([sys.executable, str(ROOT / "run_server.py"), "--tls-cert",
                             "/etc/hostname"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "TLS needs both --tls-cert and --tls-key" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="dropping to another user needs "
                                                             "root")
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("config_overrides", [{"run_as": "nobody"}])
async def test_jobs_run_as_the_given_user_when_the_server_is_root(api, run_job, write_worker,
                                                                  config):
    write_worker("WhoAmI", "import os\nfrom jobjoker import Worker\n\n"
                           "class WhoAmI(Worker):\n"
                           "    def run(self):\n"
                           "        self.log('%%d %%d' %% (os.getuid(), os.getgid()))\n"
                           "        self.log(str(os.access(%r, os.R_OK)))\n"
                           "        self.response('ok')\n" % str(config.data_dir))
    job = await run_job("WhoAmI", wait=True)
    assert job["status"] == "done", job
    log = (await api("GET", "/jobs/%s/log" % job["id"])).data
    nobody = pwd.getpwnam("nobody")
    assert log[1]["message"] == "%d %d" % (nobody.pw_uid, nobody.pw_gid)
    assert log[2]["message"] == "False"  # it cannot read the server's data dir
    assert (await api("GET", "/jobs/%s/response" % job["id"])).data[0]["message"] == "ok"


@pytest.mark.gen_test
async def test_a_refused_origin_gets_the_envelope_and_the_security_headers(api):
    reply = await api("GET", "/events", headers={
        "Origin": "http://evil.example", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
    assert reply.code == 403
    assert reply.json["success"] is False and "--allowed-origins" in reply.json["message"]
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]


def test_allowed_hosts_are_case_insensitive():
    from jobjoker.config import load_config
    assert load_config({"allowed_hosts": "Jobs.Example, X"}, environ={}).allowed_hosts == (
        "jobs.example", "x")
