"""Roles and what each may do: the one list of them.

Contract: ``ROLES`` are ordered lowest first (``viewer < operator < admin``); ``PERMISSIONS``
says which permissions each holds (``read``: see jobs, logs and workers; ``run``: create, start,
stop, kill and delete jobs, append to their entries; ``admin``: workers' code, users, other
users' tokens, the audit trail). ``allows(role, permission)`` is the one place that decides, and
a handler declares the permission each of its methods needs. Imports nothing: the server, its
OpenAPI document and the command-line client all read it.
"""
ROLES = ("viewer", "operator", "admin")
PERMISSIONS = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "run"}),
    "admin": frozenset({"read", "run", "admin"}),
}


def allows(role, permission):
    """True when ``role`` may do what ``permission`` names."""
    return permission in PERMISSIONS.get(role, ())


def lower_role(a, b):
    """The lesser of two roles."""
    return min(a, b, key=ROLES.index)


def outranks(a, b):
    """True when role ``a`` is above role ``b``."""
    return ROLES.index(a) > ROLES.index(b)
