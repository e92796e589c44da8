"""``contrib/jobjoker.service``: a unit systemd accepts, whose restarts never end a running job.

This machine's PID 1 is not systemd, so the unit is checked offline (``systemd-analyze verify``,
with its ExecStart pointed at a program that exists here), and what systemd would do on
``systemctl restart`` is simulated with real processes: the signals its ``KillMode`` sends, to
the processes of the unit's control group (the server, its supervisor and their jobs), then a
new server on the same data dir. The simulation reads ``KillMode`` from the unit itself, so a
unit that lost ``KillMode=process`` fails here.
"""
import os
import shutil
import signal
import subprocess
import sys

from support import ROOT, processes_of, unavailable, until, workers_folder

UNIT = ROOT / "contrib" / "jobjoker.service"

SLEEPER_WORKER = '''import time
from jobjoker import Worker


class Sleeper(Worker):
    """Logs `count` numbered lines, one every `every` seconds."""
    def run(self):
        for i in range(self.params["count"]):
            self.log("line %d" % i)
            time.sleep(self.params["every"])
'''


def service_settings(text):
    """The ``[Service]`` section's settings: name -> list of values, in order."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            name, _, value = line.partition("=")
            settings.setdefault(name.strip(), []).append(value.strip())
    return settings


def verify(tmp_path, text):
    """``systemd-analyze verify`` on ``text`` (with an ExecStart that exists here): its output."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        unavailable("systemd-analyze is not installed (apt-get install systemd)")
    command = service_settings(text)["ExecStart"][0].split()[0]
    unit = tmp_path / "jobjoker.service"
    unit.write_text(text.replace(command, sys.executable))
    result = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    assert verify(tmp_path, UNIT.read_text()) == (0, "")
    # And it would say so: verify warns (exit code 0) about what it ignores.
    broken = UNIT.read_text().replace("KillMode=process", "KilMode=process")
    code, output = verify(tmp_path, broken)
    assert "Unknown key" in output and "KilMode" in output, (code, output)


def test_the_unit_runs_a_dedicated_user_from_a_venv_with_a_config_file():
    settings = service_settings(UNIT.read_text())
    assert settings["KillMode"] == ["process"]
    assert settings["User"] == ["jobjoker"] and settings["Restart"] == ["on-failure"]
    command = settings["ExecStart"][0].split()
    assert command[0].endswith("/venv/bin/jobjoker") and command[1] == "serve"
    assert command[command.index("--config") + 1].startswith("/etc/jobjoker/")
    # systemd empties a private /tmp when the server stops, under the jobs that outlive it.
    assert settings.get("PrivateTmp", ["no"]) == ["no"]


def systemctl_stop(kill_mode, main_pid, control_group):
    """What systemd sends on stop (and so on restart) for ``kill_mode``: SIGTERM (with SIGCONT)
    to the main process alone (``process``), or to it first and SIGKILL to the rest later
    (``mixed``), or SIGTERM to every process of the control group (``control-group``)."""
    targets = {"process": [main_pid], "mixed": [main_pid],
               "control-group": [main_pid, *control_group]}[kill_mode]
    for pid in targets:
        for signum in (signal.SIGTERM, signal.SIGCONT):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
    if kill_mode == "mixed":
        for pid in control_group:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_restart_as_the_unit_says_leaves_a_running_job_to_finish_whole(servers, tmp_path):
    [kill_mode] = service_settings(UNIT.read_text())["KillMode"]
    workers = workers_folder(tmp_path / "workers", {"Sleeper": SLEEPER_WORKER})
    server = servers(workers_dir=workers).wait_ready()
    job = server.create_job("Sleeper", {"count": 40, "every": 0.1})
    until(lambda: "line 1" in server.messages(job["id"]), what="the job to log")
    control_group = processes_of(server.supervisor_socket)  # its supervisor and job
    assert job["pid"] in control_group and len(control_group) == 2, control_group
    systemctl_stop(kill_mode, server.process.pid, control_group)
    assert server.process.wait(timeout=60) == 0

    again = servers(workers_dir=workers, port=server.port).wait_ready()  # systemd's restart
    final = again.wait_for_job(job["id"])
    assert final["status"] == "done", final
    messages = again.messages(job["id"])
    assert [m for m in messages if m.startswith("line ")] == ["line %d" % i for i in range(40)]
    assert messages[-1].startswith("ENDED done")
    assert again.stop() == 0
