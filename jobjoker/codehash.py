"""What code a supervisor runs: a hash of the source files it loads, and of the interpreter.

Contract: ``code_hash()`` is the hex SHA-256 of ``sys.version`` followed by the bytes of each file
of ``SUPERVISOR_MODULES`` (in that order, each preceded by its name), read from this package's
folder now. Those are exactly the modules of this package that the supervisor imports before it
forks a job (``tests/test_supervisors.py`` checks the list against a real supervisor's
``sys.modules``): the code every job it forks runs, the runner and the worker API included. A
reinstall that changes any of them, or a new Python, changes the hash; a change to the server's
own modules (handlers, storage) does not, since jobs never run those.

The supervisor computes it once, right after its imports, and tells it in every ``ping``; the
server computes it at start from the files then installed, and so learns whether the supervisor
it finds runs the code a new one would (``jobjoker.supervisors``). Standard library only: the
supervisor imports it.
"""
import hashlib
import os
import sys

# This package's modules the supervisor has loaded once it is ready to fork (the package's
# __init__ is "__init__").
SUPERVISOR_MODULES = ("__init__", "bodies", "checkout", "codehash", "control_writer",
                      "controls", "errors", "jobdir", "jobenv", "jobprocess", "outcome",
                      "parameters", "proc", "runner", "spool", "states", "supervisor", "worker")

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def code_hash(package_dir=PACKAGE_DIR):
    """The hex SHA-256 of the interpreter's version and the supervisor's source files."""
    digest = hashlib.sha256(sys.version.encode())
    for name in SUPERVISOR_MODULES:
        digest.update(b"\0" + name.encode() + b"\0")
        try:
            with open(os.path.join(package_dir, name + ".py"), "rb") as f:
                digest.update(f.read())
        except OSError:
            digest.update(b"(missing)")  # an install without sources: still a fingerprint
    return digest.hexdigest()
