"""The OpenAPI document's part for retries.

Contract: ``retry_policy_fields()`` is a job's retry policy as the Job schema shows it;
``retry_body_fields(whole_batch)`` the same settings as the bodies that create jobs take them
(``POST /jobs``, each job of a batch and the whole batch, a rerun); ``retry_schemas()`` the
envelope of a chain; ``retry_paths()`` the path ``/jobs/{id}/attempts``. ``openapi_components``
and ``openapi_paths`` add them to theirs. The rules come from ``worker_settings`` (their one
home).
"""
from jobjoker.openapi_components import envelope, nullable, ref
from jobjoker.retries import DEFAULTS
from jobjoker.worker_settings import MAX_BACKOFF, MAX_RETRIES, MAX_TIMEOUT, rule


def retry_policy_fields():
    """The Job's fields of its retry policy (null only for jobs made before retries)."""
    return {
        "retries": nullable({"type": "integer", "minimum": 0, "maximum": MAX_RETRIES,
                             "description": "Attempts after the first when it ends `error` "
                                            "(its own, else its worker's, else 0): attempt "
                                            "`attempt` of `retries + 1`."}),
        "retry_delay": nullable({"type": "number", "minimum": 0, "description":
                                 "Seconds from a failed attempt's end to its retry's start "
                                 "(times `retry_backoff` to the power attempt - 1)."}),
        "retry_backoff": nullable({"type": "number", "minimum": 1, "maximum": MAX_BACKOFF,
                                   "description": "The factor each retry's delay grows by."}),
        "retry_on_timeout": nullable({"type": "boolean", "description":
                                      "Whether an attempt its time limit ended is retried."}),
    }


def retry_body_fields(whole_batch=False):
    """The retry settings a body may give (null or absent: the worker's, else the default)."""
    whose = "every job of the batch that gives none of its own" if whole_batch else "the job"
    fields = {
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES,
                    "default": DEFAULTS["retries"]},
        "retry_delay": {"type": "number", "minimum": 0, "maximum": MAX_TIMEOUT,
                        "default": DEFAULTS["retry_delay"]},
        "retry_backoff": {"type": "number", "minimum": 1, "maximum": MAX_BACKOFF,
                          "default": DEFAULTS["retry_backoff"]},
        "retry_on_timeout": {"type": "boolean", "default": DEFAULTS["retry_on_timeout"]},
    }
    return {name: nullable(dict(schema, description="For %s: %s; null or absent: its "
                                "worker's declared `%s`, else the default. Anything else: 400 "
                                "naming the field." % (whose, rule(name), name)))
            for name, schema in fields.items()}


def retry_schemas():
    """The envelope of a retry chain."""
    return {"JobAttemptsEnvelope": envelope(
        ref("schemas", "Job"), "Every attempt of the chain, first first; the message says "
        "which attempt of how many the job asked about is.", min_items=1)}


def retry_paths(operation, json_reply):
    """The paths of this part (``operation`` and ``json_reply`` are ``openapi_paths``')."""
    return {
        "/jobs/{id}/attempts": {
            "parameters": [ref("parameters", "JobId")],
            "get": operation(
                "listJobAttempts", "jobs", "List the attempts of a job's retry chain",
                {"200": json_reply("The chain the job belongs to, first attempt first (a "
                                   "job never retried is a chain of one).",
                                   "JobAttemptsEnvelope")},
                errors=["404"],
                description="A job that ends `error` (not by its time limit, unless "
                            "`retry_on_timeout`) while `attempt <= retries` is retried by a "
                            "new job (`retry_of` it, `attempt + 1`), `scheduled` after its "
                            "delay."),
        },
    }
