"""A new job's process, from the supervisor's ``fork()`` to ``os._exit``.

Contract: ``become_job(spec, null_fd, fds, ready_w, let_go)`` runs in the child and never
returns. It leads a new session and process group (``setsid``) and says so with a byte on
``ready_w`` (the supervisor replies to the start only then, so the pid already names the group);
``let_go()`` then closes what the supervisor holds (its sockets, by their objects) and gives back
its signals. The job gets /dev/null (``null_fd``) as stdin, its log spool (``fds["log"]``) as
stdout and stderr, and no other descriptor but ``fds`` (the files it writes, handed to the
runner: nothing of the supervisor's, no folder, no path it needs to reach). Under ``--run-as``
it reads its worker's file while it still may (unless the spec brings the code the server
recorded, ``worker_source``), gives ``fds`` to that user and becomes it. Its environment
becomes the job's (``jobjoker.jobenv``: the supervisor's is the base), its process title
``jobjoker job <id> <worker>``; then ``jobjoker.runner.run_job`` runs the worker and its
return value is the exit code. Anything that fails on the way is written to the log spool and
the process exits ``outcome.EXIT_ERROR``. Standard library only, plus ``setproctitle``: the
supervisor preloads it.
"""
import gc
import os
import pwd
import sys
import traceback

import setproctitle

from jobjoker import jobenv, outcome, runner


def become_job(spec, null_fd, fds, ready_w, let_go):
    """Turn the forked child into the job's process and run it (see the module's docstring)."""
    code = outcome.EXIT_ERROR
    try:
        os.setsid()
        os.write(ready_w, b"!")
        os.close(ready_w)
        # The job's own objects start from an empty collector: what it inherited is frozen
        # (see Supervisor.serve()), and so is whatever the supervisor allocated since.
        gc.freeze()
        let_go()
        os.dup2(null_fd, 0)
        os.dup2(fds["log"], 1)
        os.dup2(fds["log"], 2)
        close_all_but({0, 1, 2, *fds.values()})
        os.chdir(spec.get("cwd") or "/")
        run_as_user = None
        if spec.get("run_as"):
            # Read the worker's code while still allowed to: the workers folder belongs
            # to the server's user, not necessarily to the one the job runs as. Only when the
            # server sent none: the code it sent is the one recorded as the job's.
            if spec.get("worker_source") is None:
                with open(spec["worker_file"], "rb") as f:
                    spec["worker_source"] = f.read()
            run_as_user = become_user(spec["run_as"], fds.values())
        # The supervisor's environment is jobenv's base: nothing else reaches the job.
        jobenv.enter_job(os.environ, spec["job_id"], spec["worker"], run_as_user)
        setproctitle.setproctitle("jobjoker job %s %s" % (spec["job_id"], spec["worker"]))
        setproctitle.setthreadtitle(("jj " + spec["worker"])[:15])  # the 15 characters of top
        if spec.get("cwd"):
            # Appended, not prepended: a worker named like a module (random.py) must not
            # shadow the standard library or installed packages for every other worker.
            sys.path.append(spec["cwd"])
        spec["fds"] = fds
        code = runner.run_job(spec)
    except BaseException:
        try:
            os.write(2, traceback.format_exc().encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def close_all_but(keep):
    """Close every descriptor but those in ``keep`` (one system call per gap, close_range)."""
    low = 0
    for fd in sorted(keep):
        if low < fd:  # closerange(n, n) closes everything from n up, on some Pythons
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def become_user(username, fds):
    """Drop root for the job: its files first (``fds``, the files it writes; its folder stays
    ours), then groups, group and user (in that order: after setuid nothing else may
    change). Returns the user's ``pwd`` entry."""
    user = pwd.getpwnam(username)
    for fd in fds:
        os.fchown(fd, user.pw_uid, user.pw_gid)
    os.initgroups(username, user.pw_gid)
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    return user
