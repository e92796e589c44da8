"""``/jobs``: create, list, read, command and delete jobs; read and append their entries.

Every ``/jobs/ID/...`` route takes a job's id or its short id (``JobPathMixin``)."""
import json

from jobjoker import errors
from jobjoker.bodies import check_keys
from jobjoker.handlers.base import APIHandler, JobPathMixin, envelope
from jobjoker.jobspec import BATCH_KEYS, JOB_KEYS
from jobjoker.rerun import RERUN_KEYS
from jobjoker.states import COMMANDS


class JobsHandler(APIHandler):
    """The collection of jobs."""

    permissions = {"GET": "read", "POST": "run"}
    query_names = {"GET": ("status", "worker", "offset", "limit")}

    async def get(self):
        """Jobs newest first; ``status``, ``worker``, ``offset``, ``limit`` narrow the page;
        ``X-Total-Count`` is how many match."""
        arg = self.get_query_argument
        jobs, total = await self.jobs.list_jobs(arg("status", None), arg("worker", None),
                                                arg("offset", None), arg("limit", None))
        self.set_header("X-Total-Count", str(total))
        self.send_data(jobs)

    async def post(self):
        """Create a job from ``{"worker", "parameters"}``: idle, or started too with
        ``"start": true`` (then 201 with the job active and its pid, or ``queued`` behind a
        cap), or ``scheduled`` with a ``start_at`` still to come."""
        job, message = await self.jobs.submit_job(self.json_body(JOB_KEYS), self.actor)
        self.set_header("Location", "%s/jobs/%s" % (self.config.base_path, job["id"]))
        self.send_data(job, 201, message)


class JobsBatchHandler(APIHandler):
    """Many jobs in one request."""

    permissions = {"POST": "run"}

    async def post(self):
        """Create every job of ``{"jobs": [{"worker", "parameters"}, ...]}``, all or none, and
        with ``"start": true`` start them too (201 with the jobs, in order)."""
        jobs, message = await self.jobs.create_jobs(self.json_body(BATCH_KEYS), self.actor)
        self.send_data(jobs, 201, message)


class JobHandler(JobPathMixin, APIHandler):
    """One job."""

    permissions = {"GET": "read", "DELETE": "run"}

    async def get(self, job_id):
        """The job, with its ``result`` (null when it has none)."""
        self.send_data(await self.jobs.get_job_with_result(job_id))

    async def delete(self, job_id):
        """Delete the job with its log and response (409 while active)."""
        self.send_data(await self.jobs.delete_job(job_id, self.actor),
                       message="job %s deleted" % job_id)


class JobRerunHandler(JobPathMixin, APIHandler):
    """Run a job again: a new job of its worker, linked by ``rerun_of``."""

    permissions = {"POST": "run"}

    async def post(self, job_id):
        """Create (and, unless ``"start": false``, start) a job from the old one's parameters
        with ``{"parameters"}`` merged over them; secret ones must be given again (201)."""
        body = self.json_body(RERUN_KEYS) if self.body.strip() else {}  # no body: as it was
        job, message = await self.jobs.rerun_job(job_id, body, self.actor)
        self.set_header("Location", "%s/jobs/%s" % (self.config.base_path, job["id"]))
        self.send_data(job, 201, message)


class JobStatusHandler(JobPathMixin, APIHandler):
    """A job's status; PUT ``start``, ``stop``, ``kill``, ``pause`` or ``resume`` to command
    it."""

    permissions = {"GET": "read", "PUT": "run"}

    async def get(self, job_id):
        """``[{"id", "status"}]``."""
        job = await self.jobs.get_job(job_id)
        self.send_data({"id": job["id"], "status": job["status"]})

    async def put(self, job_id):
        """Start (200, the job now active; 202 with it ``queued`` when a concurrency cap is
        full; a scheduled job starts now), cancel a scheduled or queued one (stop or kill: 200,
        the job ``stop``, reason ``cancelled``), or stop (SIGTERM, then SIGKILL after the grace
        period) or kill (SIGKILL) it (202: it ends once its process is reaped), or pause
        (SIGSTOP) or resume (SIGCONT) it (202: paused or active once its process stopped or
        continued)."""
        command = parse_command(self.body)
        job = await self.jobs.command(job_id, command, self.actor)
        if command == "start" and job["status"] == "queued":  # beyond a cap: it waits
            self.send_data(job, 202, "job %s is queued (place %s): a concurrency cap is full; "
                           "it starts when a slot frees" % (job_id, job["queue_position"]))
        elif command == "start":
            self.send_data(job, 200, "job %s started" % job_id)
        elif job["status"] == "stop" and job.get("reason") == "cancelled":
            self.send_data(job, 200, "job %s was cancelled before it started" % job_id)
        else:  # signalled; the job becomes final once its process is reaped
            self.send_data(job, 202, "job %s is %s" % (job_id, {
                "stop": "stopping", "kill": "being killed", "pause": "pausing",
                "resume": "resuming"}[command]))


COMMAND_KEYS = ("status",)  # of a command sent as a JSON object


def parse_command(body):
    """The command word from a plain-text body (``start``) or a JSON one (``"start"``,
    ``{"status": "start"}``)."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        text = ""
    if text.startswith(("{", '"')):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        check_keys(value, COMMAND_KEYS)
        text = value.get("status") if isinstance(value, dict) else value
    if not isinstance(text, str) or not text:
        raise errors.BadRequest("send one of %s as the body" % ", ".join(COMMANDS))
    return text.lower()


class JobEntriesHandler(JobPathMixin, APIHandler):
    """A job's log or response: read a page, or append one entry."""

    permissions = {"GET": "read", "POST": "run"}
    query_names = {"GET": ("offset", "limit", "search", "ignore_case", "format")}

    async def get(self, job_id, stream):
        """Entries ``{"message", "time", "seq"}`` from ``offset`` (``limit`` of them), or with
        ``search`` those that hold that text (``ignore_case=1``: in any case), found within
        ``--search-seconds``; ``format=text`` (or ``Accept: text/plain``) gives the messages as
        plain lines."""
        arg = self.get_query_argument
        # Not stripped: a search for spaces or a tab finds them. Empty: no search, as for every
        # query option.
        search = arg("search", None, strip=False) or None
        if search is None:
            entries, total, following = await self.jobs.read_entries(
                job_id, stream, arg("offset", None), arg("limit", None), arg("ignore_case", None))
        else:
            entries, total, following = await self.jobs.search_entries(
                job_id, stream, search, arg("ignore_case", None), arg("offset", None),
                arg("limit", None))
        self.set_header("X-Total-Count", str(total))
        if following is not None:  # the page stopped short: its size, or the search's time
            self.set_header("X-Next-Offset", str(following))
        message = page_message(search is not None, len(entries), total, following)
        if arg("format", None) == "text" or \
                self.request.headers.get("Accept", "").startswith("text/plain"):
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            text = "".join(e["message"] + "\n" for e in entries)
        else:
            text = json.dumps(envelope(entries, True, message))
        del entries
        await self.send_large(text)

    async def post(self, job_id, stream):
        """Append the plain-text body as one entry."""
        entry = await self.jobs.append_entry(job_id, stream, self.body)
        self.send_data(entry, 201, "appended to the %s of job %s" % (stream, job_id))


def page_message(searched, count, total, following):
    """What a page of entries says: where to read on when it stopped short; for a search, how
    many it found and how far it looked."""
    if not searched:
        return "" if following is None else (
            "this page stopped at its size in bytes (--max-page-bytes); read on with "
            "offset=%d" % following)
    if following is None:
        return "%d matches; the search reached the end (%d entries)" % (count, total)
    return ("%d matches; the search stopped before entry %d of %d (at its time, "
            "--search-seconds, or this page's limit or size): search on with offset=%d"
            % (count, following, total, following))


class JobEntriesDownloadHandler(JobPathMixin, APIHandler):
    """A job's whole log or response as a plain-text file, however long."""

    async def get(self, job_id, stream):
        """Every message, one per line, sent page by page as it is read."""
        pages = await self.jobs.iter_entry_pages(job_id, stream)  # 404 before anything is sent
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Content-Disposition",
                        'attachment; filename="job-%s-%s.txt"' % (job_id, stream))
        async for entries in pages:
            # One page in memory at a time, however long the log, and none for a client that
            # stopped reading.
            if not await self.write_paced("".join(e["message"] + "\n" for e in entries)):
                return
        self.finish()


class JobResultHandler(JobPathMixin, APIHandler):
    """A job's structured result (``self.result()`` in its worker)."""

    permissions = {"GET": "read"}

    async def get(self, job_id):
        """``[value]``: the result alone (404 when the job has none)."""
        value = await self.jobs.get_result(job_id)
        await self.send_large(json.dumps(envelope([value]), ensure_ascii=False))


class JobPidHandler(JobPathMixin, APIHandler):
    """A job's pid: readable, but the server alone sets it."""

    permissions = {"GET": "read", "PUT": "run"}

    async def get(self, job_id):
        """``[{"id", "pid"}]``."""
        job = await self.jobs.get_job(job_id)
        self.send_data({"id": job["id"], "pid": job["pid"]})

    async def put(self, job_id):
        """Refused: the original let clients set the pid; the server owns it now."""
        await self.jobs.get_job(job_id)
        raise errors.MethodNotAllowed(
            "the pid is set by the server when it starts the job; "
            "use PUT /jobs/%s/status with start, stop, kill, pause or resume" % job_id)


default_handlers = [
    (r"/jobs", JobsHandler),
    (r"/jobs/batch", JobsBatchHandler),  # before /jobs/ID: no job id is "batch"
    (r"/jobs/([^/]+)", JobHandler),
    (r"/jobs/([^/]+)/status", JobStatusHandler),
    (r"/jobs/([^/]+)/rerun", JobRerunHandler),
    (r"/jobs/([^/]+)/(log|response)", JobEntriesHandler),
    (r"/jobs/([^/]+)/(log|response)/download", JobEntriesDownloadHandler),
    (r"/jobs/([^/]+)/pid", JobPidHandler),
    (r"/jobs/([^/]+)/result", JobResultHandler),
]
