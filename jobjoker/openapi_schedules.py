"""The OpenAPI document's part for schedules.

Contract: ``schedule_schemas()`` returns the schemas of a schedule, its runs, the bodies that
create and change one, and their envelopes; ``schedule_paths(operation, json_reply)`` the paths
``/schedules``, ``/schedules/{id}``, ``/schedules/{id}/pause``, ``/schedules/{id}/resume`` and
``/schedules/{id}/run``. ``openapi_components`` and ``openapi_paths`` add them to theirs.
"""
from jobjoker import models
from jobjoker.openapi_components import (TIMESTAMP, WORKER_NAME, envelope, nullable, ref,
                                         strict_object)
from jobjoker.schedulespec import MAX_CRON, MAX_NAME, MISSED_POLICIES, NEXT_SHOWN, \
    OVERLAP_POLICIES
from jobjoker.schedulestore import OUTCOMES
from jobjoker.states import JobStatus
from jobjoker.worker_settings import MAX_TIMEOUT

CRON = {"type": "string", "minLength": 1, "maxLength": MAX_CRON,
        "description": "A cron expression read by croniter: five fields (minute hour day "
                       "month weekday), an @name (@hourly, @daily, @weekly, @monthly, @yearly, "
                       "@midnight), or six fields with seconds last (an extension).",
        "example": "0 3 * * *"}
TIMEZONE = {"type": "string", "minLength": 1, "maxLength": 64,
            "description": "An IANA time zone: the cron's times are its local times. A time "
                           "skipped by a daylight-saving change runs at the first time after "
                           "the gap; a repeated one runs twice.", "example": "Europe/Berlin"}


def _fields(required):
    """The properties a body takes (all optional for a change)."""
    timeout = {"type": "number", "exclusiveMinimum": True, "minimum": 0,
               "maximum": MAX_TIMEOUT, "description": "Each job's time limit in seconds; null: "
                                                      "the worker's or the server's."}
    return {
        "name": nullable({"type": "string", "maxLength": MAX_NAME}),
        "worker": WORKER_NAME,
        "parameters": nullable({"type": "object", "additionalProperties": True,
                                "description": "Checked against the worker's declaration as "
                                               "a job's are; secret ones are sealed and never "
                                               "shown again (send a masked value back to "
                                               "keep it)."}),
        "timeout": nullable(timeout),
        "cron": CRON,
        "timezone": dict(TIMEZONE, default="UTC") if required else TIMEZONE,
        "missed": {"type": "string", "enum": list(MISSED_POLICIES), "default": "skip",
                   "description": "Times passed while no server ran: skip them (one skipped "
                                  "run says how many) or run once for them all."},
        "overlap": {"type": "string", "enum": list(OVERLAP_POLICIES), "default": "skip",
                    "description": "A previous job of the schedule still runs or waits: skip "
                                   "this time, queue the job behind it, or run side by side."},
    }


def schedule_schemas():
    """The schemas (envelopes included) of this part."""
    run = strict_object("One time of a schedule, fired or not.", {
        "scheduled_for": dict(TIMESTAMP, description="The cron time (a run-now: when asked)."),
        "fired": TIMESTAMP,
        "outcome": {"type": "string", "enum": list(OUTCOMES),
                    "description": "started or queued: `job` was made; skipped or failed: "
                                   "none was, `detail` says why."},
        "detail": nullable({"type": "string"}),
        "job": nullable({"type": "string", "description": "The job it made."}),
        "job_status": nullable({"type": "string", "enum": [s.value for s in JobStatus],
                                "description": "That job's status now (null: none, or "
                                               "deleted)."}),
    })
    properties = {key: value for key, value in _fields(True).items()}
    properties.update({
        "id": {"type": "string"},
        "parameters": {"type": "object", "additionalProperties": True,
                       "description": "Secret values masked."},
        "has_secrets": {"type": "boolean", "description": "Sealed secret values are stored."},
        "owner": {"type": "string", "description": "Who created it: its jobs are created in "
                                                   "this user's name."},
        "paused": nullable(dict(TIMESTAMP, description="When it was paused.")),
        "paused_reason": nullable({"type": "string", "description": "Who paused it, or why "
                                                                    "the server did."}),
        "next_run": nullable(dict(TIMESTAMP, description="Its next time; null while paused.")),
        "next_runs": {"type": "array", "items": TIMESTAMP, "maxItems": NEXT_SHOWN,
                      "description": "Its next %d times (none while paused)." % NEXT_SHOWN},
        "last_run": nullable(dict(TIMESTAMP, description="Its last cron time fired.")),
        "created": TIMESTAMP,
        "revision": {"type": "integer", "minimum": 0},
        "runs": {"type": "array", "items": ref("schemas", "ScheduleRun"),
                 "maxItems": models.RUNS_SHOWN,
                 "description": "Its last %d runs, newest first." % models.RUNS_SHOWN},
    })
    for key in ("timezone", "missed", "overlap"):
        properties[key] = {k: v for k, v in properties[key].items() if k != "default"}
    create = {"type": "object", "additionalProperties": False, "required": ["worker", "cron"],
              "properties": _fields(True),
              "example": {"name": "nightly", "worker": "TestWorker", "cron": "0 3 * * *",
                          "timezone": "Europe/Berlin", "parameters": {"count": 2}}}
    change = {"type": "object", "additionalProperties": False, "minProperties": 1,
              "properties": _fields(False), "example": {"cron": "@hourly"}}
    return {
        "ScheduleRun": run,
        "Schedule": strict_object("A worker run at the times of a cron expression.",
                                  properties),
        "ScheduleCreate": create,
        "ScheduleChange": change,
        "ScheduleListEnvelope": envelope(ref("schemas", "Schedule"), "Schedules."),
        "ScheduleEnvelope": envelope(ref("schemas", "Schedule"), "One schedule.",
                                     min_items=1, max_items=1),
    }


def schedule_paths(operation, json_reply):
    """The paths of this part (``operation`` and ``json_reply`` are ``openapi_paths``')."""
    schedule_id = [{"name": "id", "in": "path", "required": True,
                    "description": "The schedule's id.", "schema": {"type": "string"}}]

    def body(name):
        return {"required": True, "content": {"application/json": {
            "schema": ref("schemas", name)}}}
    one = json_reply("The schedule, with its next times and last runs.", "ScheduleEnvelope")
    bad = ("400 naming the field, nothing stored: a cron expression that does not parse (with "
           "croniter's reason) or never matches, an unknown time zone, a policy not listed, an "
           "unknown worker, parameters that fail the worker's declaration.")
    return {
        "/schedules": {
            "get": operation("listSchedules", "schedules", "List schedules",
                             {"200": json_reply("Schedules, oldest first.",
                                                "ScheduleListEnvelope")},
                             parameters=[ref("parameters", "Offset"),
                                         ref("parameters", "JobsLimit")]),
            "post": operation("createSchedule", "schedules", "Create a schedule",
                              {"201": json_reply("Created; you are its owner.",
                                                 "ScheduleEnvelope")},
                              errors=["400", "413"], body=body("ScheduleCreate"),
                              description=bad),
        },
        "/schedules/{id}": {
            "parameters": schedule_id,
            "get": operation("getSchedule", "schedules", "Read a schedule", {"200": one},
                             errors=["404"]),
            "patch": operation("updateSchedule", "schedules", "Change a schedule",
                               {"200": one}, errors=["400", "404", "413"],
                               body=body("ScheduleChange"),
                               description="The fields given change, the others stay; a new "
                                           "cron or zone moves its next time. " + bad),
            "delete": operation("deleteSchedule", "schedules", "Delete a schedule",
                                {"200": json_reply("Deleted, with its runs; the jobs it made "
                                                   "stay.", "ScheduleEnvelope")},
                                errors=["404"]),
        },
        "/schedules/{id}/pause": {
            "parameters": schedule_id,
            "post": operation("pauseSchedule", "schedules", "Pause a schedule", {"200": one},
                              errors=["404", "409"], description="409: already paused."),
        },
        "/schedules/{id}/resume": {
            "parameters": schedule_id,
            "post": operation("resumeSchedule", "schedules", "Resume a schedule",
                              {"200": one}, errors=["404", "409"],
                              description="From its next time after now. 409: not paused, or "
                                          "its owner may no longer run jobs."),
        },
        "/schedules/{id}/run": {
            "parameters": schedule_id,
            "post": operation("runSchedule", "schedules", "Run a schedule once now",
                              {"201": json_reply("A job was made: its run is the first of "
                                                 "`runs`.", "ScheduleEnvelope"),
                               "200": json_reply("No job was made (skipped, or failed: the "
                                                 "run's detail says why).",
                                                 "ScheduleEnvelope")},
                              errors=["404", "409"],
                              description="Outside its cron times, which stay as they are; "
                                          "its overlap policy applies. 409 when its owner may "
                                          "no longer run jobs (it is paused)."),
        },
    }
