"""Least privilege at start: a ``--run-as`` that jobs cannot escape, and what to warn of.

Contract: ``check_run_as(username, data_dir, workers_dir, secrets)`` raises a ``StartupError``
saying what to change unless the user exists, the server runs as root (the only one that can
switch to it), and that user can neither write the workers folder (what is in it, the folders
above it), nor own or write the data dir (or a folder above it), nor read the server's
``secrets`` (files); ``jobjoker.config.load_config`` calls it whenever ``run_as`` is set.
``startup_warnings(config, config_file, environ, euid)`` is the list of what the server should
warn of at start and still start: its config file readable by every user of the machine while
it holds the database's password, and running as root without ``--run-as``. Both only read
modes and owners (``os.stat``, a walk of the workers folder) and the config file; the standard
library, our errors and the config file's reader are all they import.
"""
import os
import pathlib
import stat
import urllib.parse

from jobjoker.config_options import read_config_file
from jobjoker.errors import StartupError


def check_run_as(username, data_dir=None, workers_dir=None, secrets=()):
    """Jobs can run as another user only when the server can switch to it (as root), and only
    if that user cannot rewrite the code that jobs run (the workers folder, what is in it, the
    folders above it) nor own the data dir or read the server's ``secrets`` (files)."""
    import pwd
    try:
        user = pwd.getpwnam(username)
    except KeyError:
        raise StartupError("run_as: there is no user %r on this system" % username)
    if os.geteuid() != 0:
        raise StartupError("run_as needs the server to run as root (it runs as uid %d)"
                           % os.geteuid())
    groups = set(os.getgrouplist(username, user.pw_gid))
    if workers_dir is not None and os.path.exists(workers_dir):
        above = _ancestors(workers_dir)
        for path in above + _tree(workers_dir):
            if _may(path, user.pw_uid, groups, 0o2, ancestor=path in above):
                raise StartupError(
                    "run_as: %s is writable by %s, who could then change the code of every "
                    "job: make the workers folder, everything in it and the folders above it "
                    "belong to root and not group- or world-writable (chown -R root: %s; "
                    "chmod -R go-w %s)" % (path, username, workers_dir, workers_dir))
    if data_dir is not None:
        for path in [data_dir] + _ancestors(data_dir):
            if _may(path, user.pw_uid, groups, 0o2, ancestor=path != data_dir):
                raise StartupError("run_as: the data dir %s is not safe from %s (%s belongs "
                                   "to or is writable by that user): give it to root"
                                   % (data_dir, username, path))
    for path in secrets:
        if path and _may(path, user.pw_uid, groups, 0o4):
            raise StartupError("run_as: %s is readable by %s, whom jobs run as: chmod 600 %s"
                               % (path, username, path))


def _may(path, uid, groups, permission, ancestor=False):
    """Whether user ``uid`` (in ``groups``) has ``permission`` (0o4 read, 0o2 write) on
    ``path`` (what a link there points to), or owns it. In a sticky folder above (/tmp) a user
    may write, but not rename what is not theirs."""
    try:
        info = os.stat(path)
    except OSError:
        return False  # not there (a dangling link): nothing to write or read
    if info.st_uid == uid:
        return True
    if ancestor and info.st_mode & 0o1000:
        return False
    return bool(info.st_mode & permission) or bool(
        info.st_mode & (permission << 3) and info.st_gid in groups)


def _ancestors(path):
    path = pathlib.Path(path)
    return [str(parent) for parent in path.parents]


def _tree(folder):
    paths = [str(folder)]
    for root, folders, files in os.walk(folder):
        paths.extend(os.path.join(root, name) for name in folders + files)
    return paths


def startup_warnings(config, config_file=None, environ=None, euid=None):
    """What the server should warn of at start (it still starts): its config file readable by
    every user of the machine while it holds a password (``--database``'s URL; the secret keys
    are never taken from the file), and running as root without ``--run-as``, where every job
    runs as root. ``config_file`` as given to ``load_config`` (else ``JOBJOKER_CONFIG``)."""
    warnings = []
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("JOBJOKER_CONFIG")
    if config_file:
        try:
            mode = os.stat(config_file).st_mode
            database = read_config_file(config_file).get("database")
        except (OSError, StartupError):
            mode, database = 0, None  # load_config read it a moment ago: gone since
        if mode & 0o004 and database and urllib.parse.urlsplit(database).password:
            warnings.append(
                "the config file %s holds the database password and every user of this machine "
                "may read it (mode %04o): chmod 640 %s (and chgrp it to the server's group)"
                % (config_file, stat.S_IMODE(mode), config_file))
    if (os.geteuid() if euid is None else euid) == 0 and not config.run_as:
        warnings.append(
            "running as root without --run-as: every job runs as root and can change anything "
            "on this machine; give jobs an unprivileged user with --run-as USER, or run the "
            "server as an unprivileged user (see SECURITY.md)")
    return warnings

