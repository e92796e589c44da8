"""The schedules domain: what the API can do with schedules, as plain methods.

Contract: ``ScheduleService`` lists, reads, creates, changes, deletes, pauses, resumes and runs
now (``run_now``: one firing outside the cron times, ``jobjoker.schedulefire``) schedules. A
schedule's fields are checked by ``jobjoker.schedulespec`` and its worker and parameters the
way ``POST /jobs`` checks a job's (``JobService._prepare_jobs``): every refusal is a
``BadRequest`` naming the field, and nothing is stored. Secret parameter values are sealed
with the server's ``SecretBox`` as they are stored, masked in every reply and never shown
again; a change that sends a secret back masked keeps the stored value. The creator is the
schedule's ``owner``: its jobs are created in the owner's name. Each change commits with its
audit entry (``schedule.create``, ``schedule.update``, ``schedule.delete``,
``schedule.pause``, ``schedule.resume``, ``schedule.run``) and wakes the scheduler
(``on_change``), which re-arms its timer.
"""
import json
import time

from jobjoker import schedulespec, schedulestore
from jobjoker import parameters as params
from jobjoker.errors import BadRequest, Conflict, NotFound, ValidationError
from jobjoker.jobstore import new_job_id
from jobjoker.paging import parse_page


class ScheduleService:
    """Schedules as the API sees them."""

    def __init__(self, config, storage, jobs, audit, secrets, firer):
        self.config = config
        self.storage = storage
        self.jobs = jobs  # the JobService: a schedule's job is checked as POST /jobs checks one
        self.audit = audit
        self.secrets = secrets
        self.firer = firer  # jobjoker.schedulefire.ScheduleFirer
        self.on_change = lambda: None  # the scheduler's wake()

    # --- reading -----------------------------------------------------------------------------

    async def list_schedules(self, offset=None, limit=None):
        """A page of schedules (oldest first) and how many there are."""
        offset, limit = parse_page(offset, limit, "jobs", self.config)

        def read():
            rows, total = schedulestore.page(offset, limit)
            return schedulestore.read_dicts([row.id for row in rows]), total
        return await self.storage.read(read)

    async def get_schedule(self, schedule_id):
        def read():
            schedules = schedulestore.read_dicts([schedule_id])
            if not schedules:
                schedulestore.get(schedule_id)  # NotFound
            return schedules[0]
        return await self.storage.read(read)

    # --- changing ----------------------------------------------------------------------------

    async def create_schedule(self, body, actor):
        """A new schedule from the fields of ``body``, owned by ``actor``; returns it."""
        fields = schedulespec.check_fields(body)
        public, secrets = await self._checked_parameters(fields, actor)
        now = time.time()
        values = dict(fields, id=new_job_id(), parameters=public, owner=actor.username,
                      created=now, next_run=schedulespec.next_run(
                          fields["cron"], fields["timezone"], now))

        def insert(tx):
            row = schedulestore.insert(tx, dict(values, secret_parameters=self.secrets.seal(
                secrets)))
            self.audit.record(tx, actor, "schedule.create", row.id, "worker %s, %s (%s)" % (
                row.worker, row.cron, row.timezone))
            return row
        return await self._changed(await self.storage.transaction(insert))

    async def update_schedule(self, schedule_id, body, actor):
        """Change the fields ``body`` gives; a new cron or zone re-computes the next run."""
        fields = schedulespec.check_fields(body, partial=True)
        if not fields:
            raise BadRequest("nothing to change: give any of %s"
                             % ", ".join(schedulespec.SCHEDULE_KEYS))
        row, stored_secrets = await self._read_with_secrets(schedule_id)
        merged = {key: fields.get(key, getattr(row, key)) for key in schedulespec.SCHEDULE_KEYS
                  if key != "parameters"}
        schedulespec.check_matches(merged["cron"], merged["timezone"])
        given = fields.get("parameters", "unchanged")
        if given == "unchanged":
            given = dict(json.loads(row.parameters or "{}"), **stored_secrets)
        else:  # a secret sent back masked, as replies show it, keeps its stored value
            given = {key: stored_secrets.get(key, value) if value == params.MASK else value
                     for key, value in (given or {}).items()}
        public, secrets = await self._checked_parameters(dict(merged, parameters=given), actor)
        changes = {key: value for key, value in fields.items() if key != "parameters"}
        changes.update(parameters=public)
        if ("cron" in fields or "timezone" in fields) and row.paused is None:
            changes["next_run"] = schedulespec.next_run(merged["cron"], merged["timezone"])

        def update(tx):
            changed = schedulestore.update(tx, schedule_id, secret_parameters=self.secrets.seal(
                secrets), **changes)
            self.audit.record(tx, actor, "schedule.update", schedule_id,
                              "changed %s" % ", ".join(sorted(fields)))
            return changed
        return await self._changed(await self.storage.transaction(update))

    async def delete_schedule(self, schedule_id, actor):
        """Delete the schedule and its runs; the jobs it made stay."""
        def delete(tx):
            row = schedulestore.delete(tx, schedule_id)
            self.audit.record(tx, actor, "schedule.delete", schedule_id, "worker %s, %s" % (
                row.worker, row.cron))
            return row
        row = await self.storage.transaction(delete)
        self.on_change()
        return schedulestore.schedule_to_dict(row, [])

    async def pause_schedule(self, schedule_id, actor):
        """Pause it: it does not fire until resumed."""
        def pause(tx):
            if not schedulestore.pause(tx, schedule_id, "paused by %s" % (
                    actor.username or "the server")):
                row = schedulestore.get(schedule_id)
                raise Conflict("schedule %s is already paused (%s)" % (
                    schedule_id, row.paused_reason or "no reason given"))
            self.audit.record(tx, actor, "schedule.pause", schedule_id)
            return schedulestore.get(schedule_id)
        return await self._changed(await self.storage.transaction(pause))

    async def resume_schedule(self, schedule_id, actor):
        """Resume it from its next time after now (the times passed while paused are not
        run); the owner must still be allowed to run jobs."""
        row = await self.storage.read(schedulestore.get, schedule_id)
        if row.paused is None:
            raise Conflict("schedule %s is not paused" % schedule_id)
        owner_problem = await self.storage.read(self.firer.owner_problem, row.owner)
        if owner_problem:
            raise Conflict("schedule %s cannot resume: %s; create it again as another user"
                           % (schedule_id, owner_problem))
        next_time = schedulespec.next_run(row.cron, row.timezone)

        def resume(tx):
            changed = schedulestore.update(tx, schedule_id, paused=None, paused_reason=None,
                                           next_run=next_time)
            self.audit.record(tx, actor, "schedule.resume", schedule_id)
            return changed
        return await self._changed(await self.storage.transaction(resume))

    async def run_now(self, schedule_id, actor):
        """Fire the schedule once now, outside its cron times; returns ``(schedule, run)``."""
        row = await self.storage.read(schedulestore.get, schedule_id)
        run = await self.firer.fire(row, time.time(), None, actor=actor)
        return await self.get_schedule(schedule_id), run

    # --- helpers -----------------------------------------------------------------------------

    async def _changed(self, row):
        self.on_change()
        return await self.get_schedule(row.id)

    async def _read_with_secrets(self, schedule_id):
        def read():
            row = schedulestore.get(schedule_id)
            return row, self.secrets.open(row.secret_parameters)
        return await self.storage.read(read)

    async def _checked_parameters(self, fields, actor):
        """``(public parameters as JSON, secret values)`` once the worker and parameters pass
        the checks a job's pass; ``BadRequest`` naming the field otherwise."""
        spec = {"worker": fields["worker"], "parameters": fields.get("parameters"),
                "timeout": fields.get("timeout")}
        try:
            rows, _ = await self.jobs._prepare_jobs([spec], actor)
        except (NotFound, ValidationError, BadRequest) as e:
            field = getattr(e, "field", None) or "parameters"
            raise schedulespec.problem(field, e.message)
        return rows[0]["parameters"], rows[0]["secret_parameters"] or {}
