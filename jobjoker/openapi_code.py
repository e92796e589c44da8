"""The OpenAPI document's part for the code a job ran and for running a job again.

Contract: ``code_schemas()`` returns the schemas of a worker version, the code of a job, its
diff, their envelopes and the body of ``POST /jobs/{id}/rerun``; ``code_paths()`` the paths
``/jobs/{id}/code``, ``/jobs/{id}/code/diff``, ``/jobs/{id}/rerun``,
``/workers/{name}/versions`` and ``/workers/{name}/versions/{hash}``. ``openapi_components``
and ``openapi_paths`` add them to theirs.
"""
from jobjoker.codestore import KEEP_NEWEST
from jobjoker.openapi_components import (TIMESTAMP, retry_body, WORKER_NAME, envelope, header, nullable,
                                         ref, strict_object)
from jobjoker.worker_settings import MAX_TIMEOUT

HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$",
        "description": "The hex SHA-256 of the source's bytes (a job's `code_hash`)."}


def _version_fields():
    return {
        "worker": WORKER_NAME,
        "hash": HASH,
        "saved": dict(TIMESTAMP, description="When it was saved through the API, or for code "
                                             "found on disk at a job's start, the file's "
                                             "modification time."),
        "saved_by": nullable({"type": "string", "description": "Who saved it through the API; "
                                                               "null: found on disk."}),
    }


def code_schemas():
    """The schemas (envelopes included) of this part."""
    source = {"type": "string", "description": "The worker's Python source, as it ran."}
    result = {
        "WorkerVersion": strict_object(
            "A kept version of a worker's code (kept while a job refers to it, and each "
            "worker's %d newest regardless)." % KEEP_NEWEST,
            dict(_version_fields(), jobs={"type": "integer", "minimum": 0,
                                          "description": "How many jobs ran it."})),
        "WorkerVersionSource": strict_object("A version of a worker's code, with its source.",
                                             dict(_version_fields(), source=source)),
        "JobCode": strict_object("The code a job ran.", dict(
            _version_fields(), source=source, job={"type": "string"},
            current={"type": "boolean", "description": "Whether today's worker file is this "
                                                       "same code."})),
        "JobCodeDiff": strict_object("What changed in a worker since a job ran it.", {
            "job": {"type": "string"},
            "worker": WORKER_NAME,
            "hash": HASH,
            "current_hash": nullable(dict(HASH, description="Today's file's hash (null: the "
                                                            "worker was deleted).")),
            "current": {"type": "boolean", "description": "Today's file is the code it ran."},
            "worker_deleted": {"type": "boolean"},
            "diff": {"type": "string", "description": "A unified diff from the code the job "
                                                      "ran to today's file; empty when they "
                                                      "are the same or the worker is gone."},
        }),
        "JobRerun": {
            "type": "object", "additionalProperties": False,
            "description": "All optional; an empty body runs the job again as it was (its "
                           "secret parameters excepted).",
            "properties": {
                "parameters": nullable({"type": "object", "additionalProperties": True,
                                        "description": "Merged over the old job's parameters; "
                                                       "secret ones must be given again."}),
                "timeout": nullable({"type": "number", "exclusiveMinimum": True, "minimum": 0,
                                     "maximum": MAX_TIMEOUT,
                                     "description": "Its time limit in seconds; the old "
                                                    "job's unless given."}),
                "start": {"type": "boolean", "default": True,
                          "description": "false: create the job idle."},
                **retry_body(),  # the old job's policy unless given
            },
            "example": {"parameters": {"count": 5}},
        },
    }
    for name, item, description, count in (
            ("WorkerVersionListEnvelope", "WorkerVersion", "Versions, newest first.", None),
            ("WorkerVersionEnvelope", "WorkerVersionSource", "One version.", 1),
            ("JobCodeEnvelope", "JobCode", "The code a job ran.", 1),
            ("JobCodeDiffEnvelope", "JobCodeDiff", "The diff.", 1)):
        result[name] = envelope(ref("schemas", item), description, min_items=count or 0,
                                max_items=count)
    return result


def code_paths(operation, json_reply):
    """The paths of this part (``operation`` and ``json_reply`` are ``openapi_paths``')."""
    job_id = [ref("parameters", "JobId")]
    name = [ref("parameters", "WorkerName")]
    no_code = ("404 for an unknown job, one that has not started (its code is recorded when it "
               "starts) or one that started before the code of jobs was kept.")
    return {
        "/jobs/{id}/code": {
            "parameters": job_id,
            "get": operation("getJobCode", "jobs", "Read the code a job ran",
                             {"200": json_reply("The worker's source as the job ran it, "
                                                "whatever became of the file since.",
                                                "JobCodeEnvelope")},
                             errors=["404"], description=no_code),
        },
        "/jobs/{id}/code/diff": {
            "parameters": job_id,
            "get": operation("getJobCodeDiff", "jobs", "Diff the code a job ran with today's",
                             {"200": json_reply("A unified diff, or that the worker was "
                                                "deleted (`worker_deleted`).",
                                                "JobCodeDiffEnvelope")},
                             errors=["404"], description=no_code),
        },
        "/jobs/{id}/rerun": {
            "parameters": job_id,
            "post": operation(
                "rerunJob", "jobs", "Run a job again",
                {"201": json_reply("Created (and started unless `\"start\": false`), linked "
                                   "by `rerun_of`; the message names the secret parameters "
                                   "that were not copied.", "JobEnvelope", headers={
                                       "Location": header("The new job's path.")})},
                errors=["400", "404", "413", "422"],
                body={"required": False, "content": {
                    "application/json": {"schema": ref("schemas", "JobRerun")}}},
                description="The new job is created as POST /jobs creates one, from the old "
                            "job's worker and parameters with `parameters` merged over them: "
                            "the same checks, the same errors (400 or 422 for a required "
                            "secret not given again), nothing created on a refusal. 404 when "
                            "the job's worker was deleted. 503 when it was created but could "
                            "not start."),
        },
        "/workers/{name}/versions": {
            "parameters": name,
            "get": operation(
                "listWorkerVersions", "workers", "List a worker's kept versions",
                {"200": json_reply("A page of versions newest first, without their source; "
                                   "a deleted worker's are listed too.",
                                   "WorkerVersionListEnvelope", headers={
                                       "X-Total-Count": header(
                                           "How many versions are kept.",
                                           {"type": "integer", "minimum": 0})})},
                errors=["400"],
                parameters=[ref("parameters", "Offset"), ref("parameters", "JobsLimit")]),
        },
        "/workers/{name}/versions/{hash}": {
            "parameters": name + [{"name": "hash", "in": "path", "required": True,
                                   "description": "The version's hash.", "schema": HASH}],
            "get": operation(
                "getWorkerVersion", "workers", "Read one kept version of a worker",
                {"200": json_reply("The version with its source.", "WorkerVersionEnvelope")},
                errors=["400", "404"]),
        },
    }
