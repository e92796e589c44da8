"""The environment a job starts with, and the one the supervisor is given: one allowlist.

Contract: ``job_environment(inherited, user, job_id, worker, run_as)`` is the whole environment
of a job's process, built afresh from nothing:

  PATH                 ``JOB_PATH`` (the interpreter's own bin folder first, so ``python`` and
                       ``pip`` there are the ones the job runs on), never the server's PATH
  HOME USER LOGNAME    of the user the job runs as (``user``: a ``pwd`` entry), from the
  SHELL                password database, never the server's
  LANG LANGUAGE LC_*   passed through from ``inherited`` (the supervisor's environment)
  TZ
  TMPDIR               passed through too, but only without ``--run-as`` (the server's
                       private temporary folder is no use to another user)
  PYTHONUNBUFFERED=1   so a Python child process's output reaches the log as it is written
  JOBJOKER_JOB_ID      the job's id
  JOBJOKER_WORKER      the worker's name

and nothing else: no secret of the server's (``JOBJOKER_SECRET_KEY``, a database URL with its
password, a cloud token in the server's environment), no PYTHONPATH. ``passed_through(inherited)``
is the part of an environment a job may inherit; ``supervisor_client.supervisor_environment``
builds the supervisor's from it, so what the supervisor never gets no job can get either.
Standard library only: the supervisor imports it.
"""
import os
import sys

# What systemd gives a service: the usual folders, the local ones first.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSED_NAMES = ("LANG", "LANGUAGE", "TZ")
PASSED_PREFIXES = ("LC_",)


def job_path():
    """``PATH`` of every job: the folder of the interpreter jobs run on, then the system's."""
    own = os.path.dirname(sys.executable)
    folders = SYSTEM_PATH.split(":")
    return ":".join(([own] if own and own not in folders else []) + folders)


def passed_through(inherited):
    """The variables of ``inherited`` that a job gets as they are (locale and time zone)."""
    return {name: value for name, value in inherited.items()
            if name in PASSED_NAMES or name.startswith(PASSED_PREFIXES)}


def job_environment(inherited, user, job_id, worker, run_as=None):
    """The complete environment of a job (see the module's docstring)."""
    env = passed_through(inherited)
    if not run_as and inherited.get("TMPDIR"):
        env["TMPDIR"] = inherited["TMPDIR"]
    env.update(PATH=job_path(), HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name,
               SHELL=user.pw_shell or "/bin/sh", PYTHONUNBUFFERED="1",
               JOBJOKER_JOB_ID=job_id, JOBJOKER_WORKER=worker)
    return env
