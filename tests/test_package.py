"""The package: ``handlers/`` and ``static/`` belong to ``jobjoker``, installed or in a checkout,
and nothing of the checkout lands at the top of site-packages or of a job's ``sys.path``.

The installed copy is a wheel built from a copy of the sources with this venv's setuptools and
installed without dependencies into a fresh venv, so the test needs no network; that venv
borrows this one's packages (Tornado, Peewee) through a ``.pth`` file to run a server.
"""
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from jobjoker import checkout
from jobjoker.supervisor_client import socket_path_for
from tests.support import ROOT, processes_of

# What the wheel is built from: setup.py's inputs, and no build/ or egg-info of the checkout.
SOURCES = ("setup.py", "README.md", "jobjoker", "handlers", "static")
DEPENDENCIES = "dependencies.pth"  # ours, in the test venv: not something the wheel installed

PATHS_WORKER = '''import json, os, sys

from jobjoker import Worker


class Paths(Worker):
    def run(self):
        import jobjoker.states  # a module the supervisor did not preload
        self.log(json.dumps({"path": sys.path, "PYTHONPATH": os.environ.get("PYTHONPATH"),
                             "states": jobjoker.states.__file__}))
'''


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, "%s failed:\n%s%s" % (command, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with jobjoker installed from a wheel: its python, bin and site-packages."""
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(base / "dist"), str(source)])
    wheel, = (base / "dist").glob("jobjoker-*.whl")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)])
    paths = json.loads(run([str(python), "-P", "-c", "import json, sysconfig; "
                            "print(json.dumps(sysconfig.get_paths()))"], cwd=base))
    site = pathlib.Path(paths["purelib"])
    # To run a server, the venv borrows this one's dependencies, after its own packages.
    (site / DEPENDENCIES).write_text(sysconfig.get_paths()["purelib"] + "\n")
    return {"python": python, "bin": venv / "bin", "site": site, "base": base}


def test_the_wheel_installs_handlers_and_static_inside_jobjoker(installed):
    site = installed["site"]
    assert (site / "jobjoker" / "handlers" / "__init__.py").is_file()
    assert (site / "jobjoker" / "handlers" / "pages.py").is_file()
    assert (site / "jobjoker" / "static" / "index.html").is_file()
    assert (site / "jobjoker" / "static" / "vendor").is_dir()
    # Nothing but the package and its metadata at the top: no handlers/, no static/.
    assert {entry.name for entry in site.iterdir() if entry.name != DEPENDENCIES
            and not entry.name.endswith(".dist-info")} == {"jobjoker"}
    assert (installed["bin"] / "jobjoker").is_file()
    # Outside any checkout (-P: not even the current folder on the path).
    seen = json.loads(run([str(installed["python"]), "-P", "-c", textwrap.dedent("""
        import importlib.resources, importlib.util, json
        import jobjoker, jobjoker.checkout, jobjoker.handlers
        page = importlib.resources.files("jobjoker.static") / "index.html"
        print(json.dumps({"jobjoker": jobjoker.__file__, "handlers": jobjoker.handlers.__file__,
                          "page": str(page), "is_file": page.is_file(),
                          "checkout": jobjoker.checkout.ROOT,
                          "top_level": [name for name in ("handlers", "static")
                                        if importlib.util.find_spec(name)]}))
        """)], cwd=installed["base"]))
    assert seen["jobjoker"] == str(site / "jobjoker" / "__init__.py")
    assert seen["handlers"] == str(site / "jobjoker" / "handlers" / "__init__.py")
    assert seen["page"] == str(site / "jobjoker" / "static" / "index.html") and seen["is_file"]
    assert seen["checkout"] is None and seen["top_level"] == []


def fetch(port, path, method="GET", body=None, auth=None, accept="*/*"):
    """``(status, body bytes)``: pages are not JSON, so not the JSON request helper."""
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                     data=body, headers={"Accept": accept})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_an_installed_server_serves_its_page_and_runs_jobs(installed, servers, tmp_path):
    workers = tmp_path / "workers"
    workers.mkdir()
    (workers / "Paths.py").write_text(PATHS_WORKER)
    auth = ("admin", "pw")
    server = servers(command=[str(installed["bin"] / "jobjoker"), "serve"], password="pw",
                     workers_dir=workers).wait_ready()
    status, page = fetch(server.port, "/", auth=auth, accept="text/html")
    assert status == 200 and page == (ROOT / "static" / "index.html").read_bytes()
    assert fetch(server.port, "/static/app.css") == (
        200, (ROOT / "static" / "app.css").read_bytes())
    assert fetch(server.port, "/static/js/api.js")[0] == 401
    assert fetch(server.port, "/static/js/api.js", auth=auth) == (
        200, (ROOT / "static" / "js" / "api.js").read_bytes())

    # Its supervisor runs the installed package (the job below shows which files), with no
    # PYTHONPATH (nothing to find); its process title says what it is.
    socket_path = socket_path_for(str(server.data_dir / "run"))
    supervisor, = processes_of(socket_path)
    with open("/proc/%d/cmdline" % supervisor, "rb") as f:
        assert f.read().rstrip(b"\0") == b"jobjoker supervisor %s on %s" % (
            os.fsencode(server.data_dir), os.fsencode(socket_path))
    assert os.path.realpath("/proc/%d/exe" % supervisor) == os.path.realpath(
        installed["python"])
    with open("/proc/%d/environ" % supervisor, "rb") as f:
        assert not any(line.startswith(b"PYTHONPATH=") for line in f.read().split(b"\0"))

    # And so does a job, with nothing of this checkout on its path.
    status, body = fetch(server.port, "/jobs", "POST", json.dumps(
        {"worker": "Paths", "start": True}).encode(), auth)
    assert status == 201, body
    job_id = json.loads(body)["data"][0]["id"]
    deadline = time.monotonic() + 20
    while (job := json.loads(fetch(server.port, "/jobs/" + job_id, auth=auth)[1])["data"][0]
           )["status"] == "active":
        assert time.monotonic() < deadline, "job %s did not end" % job_id
        time.sleep(0.05)
    log = json.loads(fetch(server.port, "/jobs/%s/log" % job_id, auth=auth)[1])["data"]
    assert job["status"] == "done", log
    seen = next(json.loads(entry["message"]) for entry in log
                if entry["message"].startswith("{"))
    assert seen["states"] == str(installed["site"] / "jobjoker" / "states.py")
    assert str(ROOT) not in [os.path.abspath(entry) for entry in seen["path"]]
    assert seen["PYTHONPATH"] is None
    assert server.stop() == 0


@pytest.mark.gen_test
async def test_a_job_finds_jobjoker_without_the_checkout_on_its_path(api, run_job,
                                                                      write_worker):
    # The suite runs from a checkout, whose root the supervisor needs only to import jobjoker.
    assert checkout.ROOT is not None
    write_worker("Paths", PATHS_WORKER)
    job = await run_job("Paths", wait=True)
    assert job["status"] == "done", job
    log = await api("GET", "/jobs/%s/log" % job["id"])
    seen = next(json.loads(entry["message"]) for entry in log.data
                if entry["message"].startswith("{"))
    assert checkout.ROOT not in [os.path.abspath(entry) for entry in seen["path"]]
    assert seen["PYTHONPATH"] is None
    assert seen["states"] == os.path.join(checkout.ROOT, "jobjoker", "states.py")
