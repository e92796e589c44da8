"""The jobs domain: what the API can do with jobs, as plain methods.

Contract: ``JobService`` validates input (raising domain errors with a message that says what to
fix), creates, lists, reads and deletes jobs, and turns the commands ``start``, ``stop``,
``kill``, ``pause`` and ``resume`` into state transitions and process actions (a pause or
resume is a request: the status follows the process, ``jobjoker.jobcontrol``). A job's time
limit is stored when it is created (``jobspec``) and its deadline when it starts. It never
touches HTTP; job rows go through ``jobjoker.jobstore`` on the storage's threads (every method
is a coroutine), processes through the ``ProcessManager``, and each change commits together
with its audit entry. A job can be created and started in one call (``"start": true``), and
many at once (``create_jobs``): every spec of a batch is checked (``jobjoker.jobspec``) before
anything is created, the rows go in one transaction, and the processes are forked with one
request to the supervisor. A job that was created but could not
start stays, ended ``error``, and the error says so. A deleted job's entries go in batches, each
its own transaction, before the reply. Secret parameter values are sealed (``secretbox``) on
the writer thread as they are stored; an entry appended to a job is masked with them, and
refused (``Conflict``) once the job ended more than ``--secret-retention`` seconds ago
(``jobstore.appends_open``), since they are then erased. A reply that created jobs of a worker
declaring no parameters, with parameters, says that nothing checked them. ``resolve_id`` turns
the short id a job route may be given into the job's id. A start goes through admission
(``jobjoker.job_starts``, mixed in, and ``jobjoker.admission``): ``active``, or ``queued`` beyond
a concurrency cap; a job with a ``start_at`` to come is ``scheduled``, and ``jobjoker.clock``
starts it at its time. Stop, kill or delete cancel a waiting job. Replies carry each job's
``queue_position``.
"""
import asyncio
import time

from jobjoker import admission, codestore, jobremoval, jobspec, jobstore, logsearch
from jobjoker import rerun, results
from jobjoker import parameters as params
from jobjoker.errors import BadRequest, Conflict, InvalidTransition, JobJokerError, NotFound, \
    Unavailable
from jobjoker.job_starts import JobStarts
from jobjoker.paging import page_bytes, parse_page
from jobjoker.states import COMMANDS, FINAL_STATES, WAITING_STATES, JobStatus, describe
from jobjoker.workers import check_name

class JobService(JobStarts):
    """Jobs as the API sees them."""

    def __init__(self, config, storage, logstore, workers, processes, audit, secrets):
        self.config = config
        self.secrets = secrets  # the SecretBox: secret values are stored sealed
        self.storage = storage
        self.logstore = logstore
        self.workers = workers  # the WorkerRepository: files, read in an executor
        self.processes = processes
        self.audit = audit

    # --- reading ---------------------------------------------------------------------------------

    async def resolve_id(self, reference):
        """The id of the job ``reference`` names: its id, or the short id the page shows
        (``jobstore.resolve``: ``NotFound``, or ``Conflict`` when several jobs share it)."""
        if not jobstore.needs_resolving(reference):
            return reference  # no lookup for a whole id: the request's own read says 404
        return await self.storage.read(jobstore.resolve, reference)

    async def get_job(self, job_id):
        return await self._shown(await self.storage.read(jobstore.get, job_id))

    async def get_job_with_result(self, job_id):
        """The job as ``GET /jobs/ID`` shows it: with its ``result`` (the value, or None)."""
        job, result = await self.storage.read(results.job_with_result, job_id)
        return dict(await self._shown(job), result=result)

    async def get_result(self, job_id):
        """The job's result (``self.result()`` in its worker); ``NotFound`` when it has none."""
        job, result = await self.storage.read(results.job_with_result, job_id)
        if job.result_size is None:
            raise NotFound("job %s has no result" % job_id)
        return result

    async def list_jobs(self, status=None, worker=None, offset=None, limit=None):
        """A page of jobs newest first, optionally of one status and/or worker, and how many
        match (every page of them)."""
        offset, limit = parse_page(offset, limit, "jobs", self.config)
        if status and status not in {s.value for s in JobStatus}:
            raise BadRequest("unknown status %r; use one of %s"
                             % (status, ", ".join(s.value for s in JobStatus)))
        if worker:
            check_name(worker)
        jobs, total = await self.storage.read(lambda: (
            jobstore.page(status or None, worker or None, offset, limit),
            jobstore.count(status or None, worker or None)))
        return await self._with_positions(jobs), total

    async def read_entries(self, job_id, stream, offset=None, limit=None, ignore_case=None):
        """A page of a job's log or response, the stream's total entry count, and the offset
        to read on from when the page stopped at its size in bytes (else None). ``ignore_case``
        (a search's) is only checked."""
        offset, limit = parse_page(offset, limit, "entries", self.config)
        logsearch.parse_ignore_case(ignore_case)
        max_bytes = page_bytes(self.config)

        def read():
            job = jobstore.get(job_id)
            total = job.log_count if stream == "log" else job.response_count
            return self.logstore.read_page(job_id, stream, offset, limit, max_bytes), total
        (entries, stopped), total = await self.storage.read(read)
        return entries, total, entries[-1]["seq"] + 1 if stopped else None

    async def search_entries(self, job_id, stream, text, ignore_case=None, offset=None,
                             limit=None):
        """The entries of a job's log or response from ``offset`` on that hold ``text`` (up to
        ``limit``), the stream's total, and the offset to search on from when the scan stopped
        short (its time, ``--search-seconds``, or the page's size) else None: ``logsearch``."""
        offset, limit = parse_page(offset, limit, "entries", self.config)
        text, ignore_case = logsearch.parse_search(text, ignore_case)
        return await logsearch.search_entries(
            self.storage, self.logstore, job_id, stream, text, ignore_case, offset, limit,
            page_bytes(self.config), self.config.search_seconds)

    async def iter_entry_pages(self, job_id, stream, page=10000):
        """Every entry of a stream, in pages (an async generator; ``NotFound`` raised at once,
        before the first page)."""
        job = await self.storage.read(jobstore.get, job_id)
        total = job.log_count if stream == "log" else job.response_count

        async def pages():
            offset = 0
            while offset < total:
                # read_from steps over the gap of a capped log
                entries = await self.storage.read(self.logstore.read_from, job_id, stream,
                                                  offset, page, page_bytes(self.config))
                if not entries:
                    return
                yield entries
                offset = entries[-1]["seq"] + 1
        return pages()

    # --- creating --------------------------------------------------------------------------------

    async def create_job(self, body, actor=None):
        """Create an idle job from ``{"worker": NAME, "parameters": {...} | null}``; returns it."""
        jobspec.check_job_body(body)
        rows, _ = await self._prepare_jobs([body], actor)
        [job] = await self.storage.transaction(self._insert, rows, actor, False)
        return await self._shown(job)

    async def submit_job(self, body, actor=None, rerun_of=None):
        """Create a job from ``{"worker", "parameters", "start": bool}``: idle, or with
        ``"start": true`` started too; returns ``(job, message)``, the message saying when
        the worker checks none of the parameters given. A job that could not start stays,
        ended ``error``, and ``Unavailable`` says so. ``rerun_of`` (the old job's row) links a
        job run again (``rerun_job``)."""
        start = jobspec.check_job_body(body)
        rows, unchecked = await self._prepare_jobs([body], actor)
        if rerun_of is not None:
            rows[0]["rerun_of"] = rerun_of.id
        sources = await self._read_sources(row["worker"] for row in rows) if start else {}
        [job] = await self.storage.transaction(self._insert, rows, actor, start, sources)
        if start:
            [(job, problem)] = await self._launch([job], actor, sources)
            if problem is not None:
                raise Unavailable("job %s was created but could not start: %s; it is now "
                                  "error (create a new job to try again)" % (job.id, problem))
        return await self._shown(job), "job %s created%s%s" % (
            job.id, self._how_started(job) if start else "", self._note(unchecked))

    @staticmethod
    def _note(unchecked):
        return "; " + params.unchecked_note(unchecked) if unchecked else ""

    async def create_jobs(self, body, actor=None):
        """Create many jobs from ``{"jobs": [{"worker", "parameters"}, ...], "start": bool}``,
        all or none; with ``"start": true`` start them too. Returns ``(jobs, message)``.

        Every spec is checked before anything is created; the first problems are named by their
        place (``jobs[3].worker: no worker named 'X'``) in one ``BadRequest``.
        """
        specs, start = jobspec.check_batch_body(body, self.config.max_batch)
        rows, unchecked = await self._prepare_jobs(specs, actor, batch=True)
        sources = await self._read_sources(row["worker"] for row in rows) if start else {}
        jobs = await self.storage.transaction(self._insert, rows, actor, start, sources)
        if not start:
            return await self._with_positions(jobs), "%d jobs created%s" % (
                len(jobs), self._note(unchecked))
        outcomes = await self._launch(jobs, actor, sources)
        failed = [(job, problem) for job, problem in outcomes if problem is not None]
        if len(failed) == len(jobs):
            raise Unavailable("%d jobs were created (%s) but none could start: %s; they are now "
                              "error (create new jobs to try again)"
                              % (len(jobs), self._id_range(jobs), failed[0][1]))
        message = "%d jobs created and started" % len(jobs)
        waiting = [sum(1 for job, _ in outcomes if job.status == status.value)
                   for status in (JobStatus.SCHEDULED, JobStatus.QUEUED)]
        if failed:
            message = ("%d jobs created; %d started, %d could not start and are now error: %s"
                       % (len(jobs), len(jobs) - len(failed) - sum(waiting), len(failed),
                          failed[0][1]))
        elif any(waiting):
            message = "%d jobs created; %d started" % (len(jobs), len(jobs) - sum(waiting))
        if any(waiting):
            message += "; %d scheduled, %d queued (a concurrency cap is full)" % tuple(waiting)
        shown = await self._with_positions([job for job, _ in outcomes])
        return shown, message + self._note(unchecked)

    @staticmethod
    def _id_range(jobs):
        return jobs[0].id if len(jobs) == 1 else "%s ... %s" % (jobs[0].id, jobs[-1].id)

    async def _prepare_jobs(self, specs, actor, batch=False):
        """The rows of new idle jobs, one per spec, checked, and the names of the workers that
        were given parameters they do not check (they declare none); raises the problems (each
        labelled by its place in a batch). A worker's file is read and parsed in an executor,
        and only when it changed since it was last (a ``stat`` tells)."""
        declared, unknown = {}, []
        for name in jobspec.worker_names(specs):
            try:
                known = self.workers.known_declaration(check_name(name))
            except JobJokerError as e:
                known = (None, e, {})
            if known is None:
                unknown.append(name)
            else:
                declared[name] = known
        if unknown:
            declared.update(await asyncio.get_running_loop().run_in_executor(
                None, self._declarations, unknown))
        return jobspec.prepare_rows(specs, actor, declared, self.config.max_parameters_size,
                                    batch, self.config.default_timeout)

    def _declarations(self, names):
        """Executor: for each worker name, ``(declared parameters, None, declared settings)``,
        or ``(None, the error to raise for it, {})``."""
        found = {}
        for name in names:
            try:
                declared, settings = self.workers.declaration(name)
                found[name] = (declared, None, settings)
            except JobJokerError as e:
                found[name] = (None, e, {})
        return found

    def _insert(self, tx, rows, actor, start, sources=None):
        """Writer thread: new idle jobs with their audit entries; with ``start`` those with a
        ``start_at`` still to come become ``scheduled`` and the others go through admission:
        ``active`` (announced once their pid is known, each with the code it runs, ``sources``:
        ``codestore``, recorded) or ``queued`` behind a cap. Returns the rows, in order."""
        now = time.time()
        if start:
            admission.lock()  # before any read of this transaction (see jobjoker.admission)
        jobs = jobstore.insert(tx, [dict(row, secret_parameters=self.secrets.seal(
            row["secret_parameters"])) for row in rows])
        self.audit.record_many(tx, actor, "job.create", [(job.id, "worker %s%s" % (
            job.worker, "; rerun of %s" % job.rerun_of if job.rerun_of else ""))
            for job in jobs])
        if not start:
            return jobs
        later = {job.id for job in jobs if job.start_at is not None and job.start_at > now}
        if later:  # the clock hears of them (the hub's event) and wakes at the earliest
            jobstore.transition_many(tx, sorted(later), JobStatus.SCHEDULED)
        self._admit_and_activate(tx, [job for job in jobs if job.id not in later], sources)
        return jobstore.get_many([job.id for job in jobs])

    async def _launch(self, jobs, actor, sources=None):
        """Fork the processes of active jobs, each running the code read for it (``sources``
        by worker, recorded as its ``code_hash``); ``[(job, problem)]`` as
        ``ProcessManager.launch_many`` returns, each start audited with its pid. Jobs that are
        not active (scheduled, queued) are left alone: ``(job, None)``."""
        ready = [job for job in jobs if job.status == JobStatus.ACTIVE.value and job.pid is None]
        if len(ready) < len(jobs):
            launched = dict((job.id, outcome) for job, outcome in zip(
                ready, await self._launch(ready, actor, sources))) if ready else {}
            return [launched.get(job.id, (job, None)) for job in jobs]
        return await self.processes.launch_many(
            jobs, {job.id: self.workers.path(job.worker) for job in jobs},
            also=lambda tx, started: self.audit.record_many(
                tx, actor, "job.start", [(job.id, "pid %s" % job.pid) for job in started]),
            worker_sources={job.id: sources[job.worker].text for job in jobs
                            if (sources or {}).get(job.worker) is not None
                            and sources[job.worker].exact})

    async def _read_sources(self, workers):
        """Each worker's ``codestore.Source`` (None when its file is gone), read once per
        distinct name of ``workers`` in an executor."""
        paths = [(name, self.workers.path(name)) for name in sorted(set(workers))]
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: {name: codestore.read_worker(name, path) for name, path in paths})

    async def rerun_job(self, job_id, body, actor=None):
        """A new job of the worker of job ``job_id``, linked to it (``rerun_of``), created
        through ``submit_job`` from the old parameters with ``body``'s merged over them
        (``jobjoker.rerun``: secrets are not copied); returns ``(job, message)``. ``NotFound``
        says so when the worker was deleted."""
        old = await self.storage.read(jobstore.get, job_id)
        try:
            declared = await asyncio.get_running_loop().run_in_executor(
                None, self.workers.declared_parameters, old.worker)
        except NotFound:
            raise NotFound("job %s cannot run again: its worker %r was deleted (save it again "
                           "to run it)" % (job_id, old.worker))
        except JobJokerError:
            declared = None  # the creation below says what is wrong with the worker
        creation, not_copied = rerun.creation_body(old, body, declared)
        job, message = await self.submit_job(creation, actor, rerun_of=old)
        return job, "%s (a rerun of job %s)%s" % (message, old.id,
                                                   rerun.not_copied_note(not_copied))

    # --- changing --------------------------------------------------------------------------------

    async def delete_job(self, job_id, actor=None):
        """Remove a job that is not active, with its log and response."""
        def delete(tx):
            if jobstore.get(job_id).status in WAITING_STATES:  # it ends (cancelled) first
                self._cancel(tx, job_id, "delete", actor)
            job = jobstore.delete(tx, job_id)
            self.audit.record(tx, actor, "job.delete", job_id, "worker %s; it %s" % (
                job.worker, describe(job.status)))
            if job.code_hash is not None:  # its code may be kept for no job now
                codestore.prune(tx, job.worker)
            return job
        job = await self._shown(await self.storage.transaction(delete))
        # Its entries go in batches, each its own transaction: a big log never holds the writer
        # (a crash in between leaves chunks without a job, which the next start removes).
        await jobremoval.remove_leftovers(self.storage, self.logstore, self.config.jobs_dir,
                                          [job_id])
        return job

    async def append_entry(self, job_id, stream, body):
        """Append the plain-text ``body`` as one entry of the job's log or response."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest("the body must be UTF-8 text (invalid byte at offset %d)" % e.start)
        when = time.time()

        def append(tx):
            job = jobstore.get(job_id)
            if not jobstore.appends_open(job, when, self.config.secret_retention):
                raise Conflict(
                    "job %s ended %.0f s ago: entries are accepted only while its secret "
                    "values, which mask them, are kept: %g s after a job's end "
                    "(--secret-retention)" % (job_id, when - job.stoptime,
                                              self.config.secret_retention))
            masked = text
            # A client may echo a secret back: it stays masked.
            values = self.secrets.open(job.secret_parameters, job_id)
            if values:
                masked = params.Masker(params.mask_values(values)).text(text)
            return self.logstore.append_message(tx, job_id, stream, masked, when), masked
        seq, text = await self.storage.transaction(append)
        return {"seq": seq, "message": text, "time": round(when, 3)}

    async def command(self, job_id, command, actor=None):
        """Apply ``start``, ``stop``, ``kill``, ``pause`` or ``resume`` to a job; returns the
        job (a pause or resume is requested: the status follows once the process stopped or
        continued)."""
        if command not in COMMANDS:
            raise BadRequest(self._command_error(command))
        if command == "start":
            return await self._shown(await self._start(job_id, actor))
        if job_id not in self.processes.running:  # say why not: idle, ended, or gone
            job = await self.storage.read(jobstore.get, job_id)
            if job.status in WAITING_STATES and command in ("stop", "kill"):
                try:
                    return await self._shown(await self.storage.transaction(
                        self._cancel, job_id, command, actor))
                except InvalidTransition:  # it started meanwhile: stop its process
                    job = await self.storage.read(jobstore.get, job_id)
            if job.status in WAITING_STATES and command in ("pause", "resume"):
                raise InvalidTransition("job %s %s: it has not started, so there is nothing to "
                                        "%s (stop it to cancel it)" % (
                                            job_id, describe(job.status), command))
            if job.status == JobStatus.IDLE.value:
                raise InvalidTransition("job %s is idle: it has not started, so there is "
                                        "nothing to %s%s" % (job_id, command, (
                                            " (delete it instead)" if command in ("stop", "kill")
                                            else "")))
            if job.status in FINAL_STATES:
                raise jobstore.already_ended(job)
        act = {"stop": self.processes.stop, "kill": self.processes.kill,
               "pause": self.processes.pause, "resume": self.processes.resume}[command]
        return await self._shown(await act(job_id, also=lambda tx, job: self.audit.record(
            tx, actor, "job.%s" % command, job_id)))

    @staticmethod
    def _command_error(command):
        valid = ", ".join(COMMANDS)
        if command in {s.value for s in JobStatus}:
            return ("the status %r is set by the server, not by clients; send one of: %s"
                    % (command, valid))
        return "unknown command %r; send one of: %s" % (command, valid)
