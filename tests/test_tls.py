"""TLS for clients (issue 14, item 10): the client and the command line trust a server's
certificate by ``--ca-cert``/``JOBJOKER_CA_BUNDLE`` and say clearly what to do when they do not;
``--hsts-seconds`` sends Strict-Transport-Security on HTTPS replies only; the ``_xsrf`` cookie is
``Secure`` wherever the session cookie is (the server's own TLS, or a trusted proxy's https).

Real server processes with a self-signed certificate made by the test (``openssl``).
"""
import ssl
import subprocess
import sys

import pytest

from jobjoker.cli_actions import EXIT_UNAVAILABLE, EXIT_USAGE
from jobjoker.client import CA_BUNDLE_VARIABLE, Client, UntrustedCertificate
from tests.support import PASSWORD, ROOT, ServerProcess, self_signed_certificate, wait_for_end


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certificate):
    """An HTTPS server asked to send HSTS."""
    server = ServerProcess(tmp_path_factory.mktemp("tls-server"), "--hsts-seconds", "600",
                           tls=certificate)
    try:
        yield server.wait_ready()
    finally:
        server.discard()


def cli(*args, env=None):
    environ = {"PATH": "/usr/bin:/bin", "JOBJOKER_PASSWORD": PASSWORD, **(env or {})}
    return subprocess.run([sys.executable, "-m", "jobjoker.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=environ)


def test_the_client_refuses_an_untrusted_certificate_and_says_how_to_trust_it(
        tls_server, certificate, monkeypatch):
    monkeypatch.delenv(CA_BUNDLE_VARIABLE, raising=False)
    client = Client(tls_server.url, "admin", PASSWORD)
    with pytest.raises(UntrustedCertificate) as rest:
        client.workers()
    trusted = Client(tls_server.url, "admin", PASSWORD, ca_cert=str(certificate[0]))
    job_id = trusted.create_job("Foobar")["id"]
    with pytest.raises(UntrustedCertificate) as stream:  # at once: retrying cannot help
        next(iter(client.follow(job_id)))
    for caught in (rest, stream):
        message = caught.value.message
        assert "is not trusted" in message and "--ca-cert" in message, message
        assert CA_BUNDLE_VARIABLE in message and tls_server.url in message


def test_the_client_trusts_the_ca_given_as_argument_or_in_the_environment(
        tls_server, certificate, monkeypatch):
    monkeypatch.delenv(CA_BUNDLE_VARIABLE, raising=False)
    by_argument = Client(tls_server.url, "admin", PASSWORD, ca_cert=str(certificate[0]))
    assert "Foobar" in [worker["name"] for worker in by_argument.workers()]
    monkeypatch.setenv(CA_BUNDLE_VARIABLE, str(certificate[0]))
    by_environment = Client(tls_server.url, "admin", PASSWORD)
    job = by_environment.create_job("Foobar", start=True)
    events = list(by_environment.follow(job["id"]))  # the stream over wss://, trusted too
    assert events[-1].kind == "end" and events[-1].status == "done"
    assert wait_for_end(by_argument, job["id"])["status"] == "done"


def test_a_certificate_for_another_name_says_so(tls_server, certificate):
    # The certificate names 127.0.0.1 only, and localhost is the same server.
    other_name = tls_server.url.replace("127.0.0.1", "localhost")
    with pytest.raises(UntrustedCertificate, match="is for another name .*use the host name"):
        Client(other_name, "admin", PASSWORD, ca_cert=str(certificate[0])).workers()


def test_a_ca_file_that_cannot_be_read_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(CA_BUNDLE_VARIABLE, raising=False)
    with pytest.raises(ValueError, match="cannot read the CA certificates in .*nothing.pem"):
        Client("https://127.0.0.1:1", ca_cert=str(tmp_path / "nothing.pem"))


def test_the_command_line_fails_clearly_without_the_ca_and_works_with_it(tls_server,
                                                                         certificate):
    url = ("--url", tls_server.url)
    refused = cli("workers", "ls", *url)
    assert refused.returncode == EXIT_UNAVAILABLE, refused
    assert "is not trusted" in refused.stderr and "--ca-cert" in refused.stderr
    assert "Traceback" not in refused.stderr
    with_flag = cli("workers", "ls", *url, "--ca-cert", str(certificate[0]))
    assert with_flag.returncode == 0 and "Foobar" in with_flag.stdout, with_flag
    with_variable = cli("run", "Foobar", "--follow", *url,
                        env={CA_BUNDLE_VARIABLE: str(certificate[0])})
    assert with_variable.returncode == 0 and "foobar" in with_variable.stdout, with_variable
    missing = cli("workers", "ls", *url, "--ca-cert", "/nonexistent/ca.pem")
    assert missing.returncode == EXIT_USAGE and "/nonexistent/ca.pem" in missing.stderr


def test_hsts_is_sent_only_when_asked_and_only_over_https(tls_server, certificate, servers,
                                                           tmp_path):
    context = tls_context(certificate)
    asked = tls_server.call("GET", "/health", auth=None, context=context)
    assert asked.headers["Strict-Transport-Security"] == "max-age=600"
    page = tls_server.call("GET", "/login", auth=None, context=context)  # pages too
    assert page.headers["Strict-Transport-Security"] == "max-age=600"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    not_asked = servers(tls=certificate, root=tmp_path / "a").wait_ready()
    reply = not_asked.call("GET", "/health", auth=None, context=context)
    assert "Strict-Transport-Security" not in reply.headers
    # Over plain HTTP it is never sent, asked or not: a browser would ignore it there.
    plain = servers("--hsts-seconds", "600", root=tmp_path / "b").wait_ready()
    assert "Strict-Transport-Security" not in plain.call("GET", "/health", auth=None).headers


def test_both_cookies_are_secure_under_tls(tls_server, certificate):
    login = tls_server.call("POST", "/session", {"username": "admin", "password": PASSWORD},
                           auth=None, context=tls_context(certificate))
    assert login.code == 201, login
    cookies = cookie_headers(login)
    assert set(cookies) == {"jobjoker_session", "_xsrf"}
    for name, header in cookies.items():
        assert "Secure" in header and "SameSite=Strict" in header, (name, header)


def test_behind_a_trusted_proxy_https_makes_cookies_secure_and_sends_hsts(servers):
    server = servers("--trust-proxy", "yes", "--hsts-seconds", "60").wait_ready()
    body = {"username": "admin", "password": PASSWORD}
    https = server.call("POST", "/session", body, auth=None,
                        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.0.0.1"})
    assert https.code == 201, https
    assert all("Secure" in header for header in cookie_headers(https).values())
    assert https.headers["Strict-Transport-Security"] == "max-age=60"
    http = server.call("POST", "/session", body, auth=None,
                       headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": "10.0.0.1"})
    assert not any("Secure" in header for header in cookie_headers(http).values())
    assert "Strict-Transport-Security" not in http.headers


def tls_context(certificate):
    return ssl.create_default_context(cafile=str(certificate[0]))


def cookie_headers(reply):
    """``{name: Set-Cookie header}`` of a reply."""
    return {header.split("=", 1)[0]: header for header in reply.headers.get_list("Set-Cookie")}
