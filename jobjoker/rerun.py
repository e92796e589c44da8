"""Running a job again: what the new job is made of, from the old one and a request's body.

Contract: ``RERUN_KEYS`` are the keys ``POST /jobs/ID/rerun`` takes (``parameters``, merged over
the old job's; ``timeout``; ``start``, true unless given). ``creation_body(old, body, declared)``
checks the body's shape (``BadRequest`` naming the field) and returns ``(creation body, secrets
not copied)``: the body is an ordinary ``POST /jobs`` body, so the new job passes the
very checks (``jobjoker.jobspec``) every new job passes. Secret values are never copied: the old
job keeps them sealed and shows them masked, so a secret parameter (one whose stored value is
the mask, or one the worker declares secret today) must be given again; ``not_copied_note``
says so in the reply. The old job's ``timeout`` and retry policy are kept unless the body gives
them (a rerun starts a chain of its own: attempt 1). Pure: no
storage, no I/O.
"""
import json

from jobjoker import parameters as params
from jobjoker import retries
from jobjoker.errors import BadRequest

RERUN_KEYS = ("parameters", "timeout", "start", *retries.KEYS)


def secret_names(public, declared):
    """The names of the old job's parameters that held secrets (masked in ``public``) or that
    the worker declares secret now."""
    now_secret = {name for name, spec in (declared or {}).items() if spec.get("secret")}
    return {name for name, value in public.items()
            if value == params.MASK or name in now_secret}


def creation_body(old, body, declared):
    """``(POST /jobs body, names of secrets not copied and not given)`` of a rerun of the job
    row ``old``, given the worker's declaration today. The time limit is the body's (checked
    with every new job's, ``jobspec.check_timeout``; null: the worker's or the server's
    default), else the old job's."""
    if not isinstance(body, dict):  # JSON null too: an empty body is the way to change nothing
        raise BadRequest('the body must be a JSON object like {"parameters": {...}} (or empty)')
    given = body.get("parameters")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise BadRequest('"parameters" must be a JSON object of the parameters to change')
    start = body.get("start", True)  # checked with every new job's body (jobspec.start_flag)
    timeout = body["timeout"] if "timeout" in body else old.timeout
    public = json.loads(old.parameters)
    dropped = secret_names(public, declared)
    merged = {name: value for name, value in public.items() if name not in dropped}
    merged.update(given)
    creation = {"worker": old.worker, "parameters": merged, "start": start}
    if timeout is not None:
        creation["timeout"] = timeout
    for name in retries.KEYS:  # the old job's policy unless given; a rerun is a first attempt
        value = body[name] if name in body else getattr(old, name)
        if value is not None:
            creation[name] = value
    return creation, sorted(dropped - set(given))


def not_copied_note(names):
    """What a rerun's reply says of the secrets it did not copy ("" when none)."""
    if not names:
        return ""
    return "; secret parameters not copied: %s; give them again" % ", ".join(names)
