"""The environment a job starts with, and the one the supervisor is given: one allowlist.

Contract: a job's process starts with exactly this environment, made afresh, not inherited:

  PATH                 ``job_path()`` (the interpreter's own bin folder first, so ``python`` and
                       ``pip`` there are the ones the job runs on), never the server's PATH
  HOME USER LOGNAME    of the user the job runs as (a ``pwd`` entry), from the password
  SHELL                database, never the server's
  LANG LANGUAGE LC_*   passed through from the supervisor's environment
  TZ
  TMPDIR               passed through too, but only without ``--run-as`` (the server's
                       private temporary folder is no use to another user)
  PYTHONUNBUFFERED=1   so a Python child process's output reaches the log as it is written
  JOBJOKER_JOB_ID      the job's id
  JOBJOKER_WORKER      the worker's name

and nothing else: no secret of the server's (``JOBJOKER_SECRET_KEY``, a database URL with its
password, a cloud token in the server's environment), no PYTHONPATH. In two steps, so that a
start costs little: ``base_environment(inherited, user)`` is what every job of the supervisor's
``user`` starts from (the supervisor makes it its own environment once, and every fork inherits
it); ``enter_job(environ, job_id, worker, run_as_user)`` changes that, in place, into one job's.
``passed_through(inherited)`` is the part of an environment a job may inherit;
``supervisor_client.supervisor_environment`` builds the supervisor's from it, so what the
supervisor never gets no job can get either. Standard library only: the supervisor imports it.
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


def user_variables(user):
    """``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` of ``user`` (a ``pwd`` entry)."""
    return {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name,
            "SHELL": user.pw_shell or "/bin/sh"}


def base_environment(inherited, user):
    """What every job run as ``user`` starts from (see the module's docstring)."""
    env = passed_through(inherited)
    if inherited.get("TMPDIR"):
        env["TMPDIR"] = inherited["TMPDIR"]
    env.update(PATH=job_path(), PYTHONUNBUFFERED="1", **user_variables(user))
    return env


def enter_job(environ, job_id, worker, run_as_user=None):
    """Make ``environ`` (a base environment: ``os.environ`` in a new job) the job's own:
    another user's variables under ``--run-as`` (``run_as_user``, a ``pwd`` entry), and ours."""
    if run_as_user is not None:
        environ.pop("TMPDIR", None)
        environ.update(user_variables(run_as_user))
    environ["JOBJOKER_JOB_ID"] = job_id
    environ["JOBJOKER_WORKER"] = worker
