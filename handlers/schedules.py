"""``/schedules``: cron schedules of jobs (``jobjoker.schedules``).

Viewers read them; operators create, change, delete, pause, resume and run them now."""
from jobjoker.handlers.base import APIHandler
from jobjoker.schedulespec import SCHEDULE_KEYS, iso_time


class SchedulesBase(APIHandler):
    @property
    def schedules(self):
        return self.settings["schedules"]


class SchedulesHandler(SchedulesBase):
    """The collection of schedules."""

    permissions = {"GET": "read", "POST": "run"}
    query_names = {"GET": ("offset", "limit")}

    async def get(self):
        """Schedules oldest first, each with its next run times and its last runs;
        ``X-Total-Count`` is how many there are."""
        arg = self.get_query_argument
        schedules, total = await self.schedules.list_schedules(arg("offset", None),
                                                               arg("limit", None))
        self.set_header("X-Total-Count", str(total))
        self.send_data(schedules)

    async def post(self):
        """Create a schedule owned by the caller (201)."""
        schedule = await self.schedules.create_schedule(self.json_body(SCHEDULE_KEYS),
                                                        self.actor)
        self.set_header("Location", "%s/schedules/%s" % (self.config.base_path,
                                                          schedule["id"]))
        self.send_data(schedule, 201, "schedule %s created; next run %s" % (
            schedule["id"], iso_time(schedule["next_run"])))


class ScheduleHandler(SchedulesBase):
    """One schedule."""

    permissions = {"GET": "read", "PATCH": "run", "DELETE": "run"}

    async def get(self, schedule_id):
        """The schedule, with its next run times and its last runs."""
        self.send_data(await self.schedules.get_schedule(schedule_id))

    async def patch(self, schedule_id):
        """Change the fields given (the others stay)."""
        self.send_data(await self.schedules.update_schedule(
            schedule_id, self.json_body(SCHEDULE_KEYS), self.actor),
            message="schedule %s changed" % schedule_id)

    async def delete(self, schedule_id):
        """Delete the schedule and its runs; its jobs stay."""
        self.send_data(await self.schedules.delete_schedule(schedule_id, self.actor),
                       message="schedule %s deleted" % schedule_id)


class SchedulePauseHandler(SchedulesBase):
    """Pause a schedule."""

    permissions = {"POST": "run"}

    async def post(self, schedule_id):
        """It fires no more until resumed (409 when it already is paused)."""
        self.send_data(await self.schedules.pause_schedule(schedule_id, self.actor),
                       message="schedule %s paused" % schedule_id)


class ScheduleResumeHandler(SchedulesBase):
    """Resume a paused schedule."""

    permissions = {"POST": "run"}

    async def post(self, schedule_id):
        """It fires again from its next time after now (409 when it is not paused)."""
        self.send_data(await self.schedules.resume_schedule(schedule_id, self.actor),
                       message="schedule %s resumed" % schedule_id)


class ScheduleRunHandler(SchedulesBase):
    """Run a schedule once now."""

    permissions = {"POST": "run"}

    async def post(self, schedule_id):
        """Fire it once now, outside its cron times: the schedule, its newest run first (201
        when a job was made, 200 when the run was skipped or failed)."""
        schedule, run = await self.schedules.run_now(schedule_id, self.actor)
        made = run["job"] is not None
        self.send_data(schedule, 201 if made else 200, "schedule %s: %s%s" % (
            schedule_id, run["outcome"], " job %s" % run["job"] if made else
            ": %s" % run["detail"]))


default_handlers = [
    (r"/schedules", SchedulesHandler),
    (r"/schedules/([^/]+)", ScheduleHandler),
    (r"/schedules/([^/]+)/pause", SchedulePauseHandler),
    (r"/schedules/([^/]+)/resume", ScheduleResumeHandler),
    (r"/schedules/([^/]+)/run", ScheduleRunHandler),
]
