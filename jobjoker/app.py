"""The composition root: config -> database -> supervisor and process manager -> web app.

Contract: ``JobJokerServer(config)`` builds everything in order on ``await start()`` and takes it
down on ``await stop()``; each piece gets what it needs passed in (no globals). ``make_app`` turns
the services into a Tornado ``Application`` whose routes are the ``default_handlers`` of the
handler modules, concatenated. A server holds an exclusive lock on its data dir and the lease on
its node name in the database (``jobjoker.nodes``), so a second server on either refuses to start
and touches nothing: it takes the lease before it migrates, adopts jobs or starts a supervisor.
Every statement runs on the ``Storage``'s threads, none on the IOLoop.
"""
import asyncio
import fcntl
import importlib.resources
import json
import logging
import os
import re
import ssl
import sys
import time

import peewee
import tornado.web

from jobjoker import __version__, auth, forwarded, jobstore, logsetup, models, secretbox
from jobjoker import admission
from jobjoker import storage as storage_module
from jobjoker.accounts import Accounts
from jobjoker.audit import AuditLog
from jobjoker.budget import MemoryBudget
from jobjoker.clock import Clock
from jobjoker.connections import GuardedHTTPServer, connection_cap, raise_fd_limit
from jobjoker.credential_watch import CredentialWatch
from jobjoker.database_url import redact_url
from jobjoker.errors import DatabaseUnavailable, StartupError, Unavailable
from jobjoker.handlers import audit as audit_routes
from jobjoker.handlers import base
from jobjoker.handlers import code as code_routes
from jobjoker.handlers import health as health_routes
from jobjoker.handlers import jobs as jobs_routes
from jobjoker.handlers import metrics as metrics_routes
from jobjoker.handlers import pages as page_routes
from jobjoker.handlers import session as session_routes
from jobjoker.handlers import streams as stream_routes
from jobjoker.handlers import tokens as token_routes
from jobjoker.handlers import usage as usage_routes
from jobjoker.handlers import users as user_routes
from jobjoker.handlers import webhooks as webhook_routes
from jobjoker.handlers import workers as workers_routes
from jobjoker.handlers import schedules as schedule_routes
from jobjoker.handlers import retries as retry_routes
from jobjoker.events import EventHub
from jobjoker.jobcode import CodeService
from jobjoker.jobs import JobService
from jobjoker.logstore import LogStore
from jobjoker.logthrottle import LogThrottle
from jobjoker.looplag import LoopMonitor
from jobjoker.metrics import Metrics
from jobjoker.nodes import NodeLease
from jobjoker.openapi import openapi_document
from jobjoker.procman import ProcessManager
from jobjoker.schedulefire import ScheduleFirer
from jobjoker.scheduler import Scheduler
from jobjoker.schedules import ScheduleService
from jobjoker.pruner import Pruner
from jobjoker.retention import Policy
from jobjoker.secretkeeper import SecretKeeper
from jobjoker.storage import Storage
from jobjoker.webhooks import WebhookService
from jobjoker.webhooks_sender import WebhookSender
from jobjoker.retries import RetryHook
from jobjoker.worker_service import WorkerService
from jobjoker.workers import WorkerRepository, create_folder

log = logging.getLogger(__name__)
# A write that waits or runs longer than this (every one takes well under a second) means the
# database hangs: MariaDB on a full disk waits for space instead of failing, a lock held
# elsewhere holds every write (SQLite fails each after its 5 s busy wait; the next one waits).
STUCK_WRITE_SECONDS = 10.0
GIL_SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005

# One handlers module per resource, each ending in its route list: adding a resource is a module
# and a line here.
HANDLER_MODULES = [health_routes, page_routes, workers_routes, jobs_routes, stream_routes,
                   code_routes, session_routes, user_routes, token_routes, audit_routes,
                   metrics_routes, usage_routes, schedule_routes]
HANDLER_MODULES += [webhook_routes]
HANDLER_MODULES.append(retry_routes)


def routes():
    """Every route of the application, from the handler modules."""
    return [route for module in HANDLER_MODULES for route in module.default_handlers]


def mounted(route_list, base_path):
    """``route_list`` served under ``base_path`` (``--base-path``, e.g. ``/jobjoker``): every
    pattern prefixed, so a proxy can pass the full path on. The handlers never see the prefix
    in their arguments; the few that build an address add it (``config.base_path``)."""
    prefix = re.escape(base_path)
    return [(prefix + pattern, *rest) for pattern, *rest in route_list]


def make_app(config, services, health):
    """The Tornado application over ``services`` (a dict: jobs, workers, authenticator,
    accounts, audit, logstore, hub, storage, metrics); ``health`` answers ``/health``."""
    # The page's files are the package data of jobjoker.static (static/ in a checkout); Tornado
    # serves them from a folder, which a package installed unzipped has.
    static_dir = os.fspath(importlib.resources.files("jobjoker.static"))
    return tornado.web.Application(
        mounted(routes() + [page_routes.static_route(static_dir)], config.base_path)
        + page_routes.prefix_routes(config.base_path),
        config=config,
        # Built once, from the routes' own handlers: who may call what is their declaration.
        openapi=json.dumps(openapi_document(routes(), config)),
        health=health,
        open_streams=set(),
        # A refused WebSocket origin is logged once a minute, not once per retry of a page.
        refusal_log=LogThrottle(stream_routes.log, interval=60.0),
        # Server-wide bounds on what many clients together make the server hold.
        body_budget=MemoryBudget(config.max_body_memory),
        stream_budget=MemoryBudget(config.stream_memory),
        xsrf_cookie_kwargs={"samesite": "Strict"},
        log_function=logsetup.access_log(config),
        **services,
        # Not Tornado's static_path: that would add a /static/ route outside our authentication.
        static_dir=static_dir,
        default_handler_class=base.NotFoundHandler,
        # Subscribers have nothing to send: a big message is refused with close code 1009.
        websocket_max_message_size=64 * 1024,
    )


class DataDirLock:
    """An exclusive lock on the data dir: one server per data dir."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, "server.lock")
        self.fd = None

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError("another JobJoker server (pid %s) is using the data dir %s; "
                               "stop it or choose another --data-dir"
                               % (holder, os.path.dirname(os.path.dirname(self.path))))
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class JobJokerServer:
    """Everything one JobJoker server runs, started and stopped as a unit."""

    def __init__(self, config, admin_password=None):
        self.config = config
        self.admin_password = admin_password
        self.lock = DataDirLock(os.fspath(config.run_dir))
        self.lease = NodeLease(config.node, config.data_dir, config.node_heartbeat,
                               config.node_lease_ttl)
        self.database = None
        self.storage = None
        self.processes = None
        self._sweeper = None
        self.secret_box = None
        self.secret_keeper = None
        self.app = None
        self.http_server = None
        self.admin_created = None
        self.loop_monitor = None
        self.credential_watch = None
        self.metrics = Metrics()
        self.scheduler = None
        self.webhook_sender = None
        self.pruner = None  # retention's periodic prune (jobjoker.pruner)

    async def start(self, listen=True):
        """Open everything, re-adopt running jobs and (with ``listen``) accept requests."""
        config = self.config
        self._take_data_dir()
        # The storage's threads run Python (the MySQL driver, spool parsing) while the loop waits
        # on sockets: each time the loop comes back from a system call it must win the GIL
        # again, and by default a busy thread keeps it up to 5 ms. A shorter interval hands it
        # to the loop sooner, which is what every request and stream waits for.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.loop_monitor = LoopMonitor(config.slow_callback_seconds,
                                        observe=self.metrics.observe_loop_lag).start()
        # Peewee logs every statement with its parameters at DEBUG, secret parameters and
        # password hashes included: keep it quiet even when the server runs at DEBUG.
        logging.getLogger("peewee").setLevel(max(logging.INFO, logging.getLogger(
            "peewee").getEffectiveLevel()))
        hub = EventHub()
        hub.subscribe(self.metrics.count_event)
        try:
            await self._open_database(hub)
        except BaseException:
            await self._close_database()
            self.lock.release()
            raise
        self.lease.start_heartbeat(self.storage.call)
        sqlite_file = getattr(self.database, "database", None)
        if isinstance(self.database, peewee.SqliteDatabase) and os.path.exists(sqlite_file):
            os.chmod(sqlite_file, 0o600)
        storage = self.storage
        self.admin_created = await auth.ensure_admin(storage, self.admin_password)

        logstore = LogStore(config.max_log_bytes)
        workers = WorkerRepository(config.workers_dir, config.max_worker_size)
        audit = AuditLog(storage)
        # Before adoption, which may end jobs: a failed one's retry is made with its end.
        storage.end_hooks.append(RetryHook(self.secret_box, audit))
        self.processes = ProcessManager(config, storage, logstore, self.secret_box, audit)
        jobs = JobService(config, storage, logstore, workers, self.processes, audit,
                          self.secret_box)
        authenticator = auth.Authenticator(storage, auth.Throttle(
            config.login_failures, config.login_failures_per_address, config.login_window))
        self.hub = hub
        self.credential_watch = CredentialWatch(storage)
        # Before any job can end (adoption ends the lost ones): each end owes its deliveries.
        self.webhook_sender = WebhookSender(storage, self.secret_box, config).start()
        webhooks = WebhookService(storage, self.secret_box, audit, self.webhook_sender.wake)
        storage.end_hooks.append(webhooks.job_ended)
        await self.processes.start()
        self.secret_keeper = SecretKeeper(self.secret_box, storage, hub,
                                          config.secret_retention)
        await self.secret_keeper.start()
        schedules = await self._start_flow(jobs, audit, logstore)
        self._sweeper = asyncio.ensure_future(self._remove_orphaned_entries(logstore))
        self.app = make_app(config, {
            "jobs": jobs, "workers": WorkerService(storage, workers, audit),
            "code": CodeService(config, storage, workers),
            "authenticator": authenticator,
            "accounts": Accounts(storage, authenticator, audit, config.session_lifetime,
                                 self.credential_watch),
            "credential_watch": self.credential_watch,
            "audit": audit, "logstore": logstore, "hub": hub, "storage": storage,
            "webhooks": webhooks,
            "metrics": self.metrics, "usage": self.processes.usage,
            "schedules": schedules}, self.health)
        self.metrics.watch(storage, jobstore.count_by_status, self.supervisors,
                           lambda: len(self.app.settings["open_streams"]))
        self.credential_watch.start()
        if listen:
            self._listen()
        return self

    async def _start_flow(self, jobs, audit, logstore):
        """Start what runs jobs without a request: the clock of scheduled and queued jobs
        (under the cap stored for every server), the scheduler and the periodic prune;
        returns the schedules' service."""
        config, storage = self.config, self.storage
        await storage.transaction(lambda tx: admission.store_cap(config.max_active_jobs))
        jobs.clock = self.clock = Clock(jobs, storage, self.hub).start()
        firer = ScheduleFirer(storage, jobs, audit, self.secret_box)
        schedules = ScheduleService(config, storage, jobs, audit, self.secret_box, firer)
        self.scheduler = Scheduler(storage, firer).start()
        schedules.on_change = self.scheduler.wake
        self.pruner = Pruner(storage, logstore, config.jobs_dir, Policy.of(config),
                             config.prune_interval, audit, self.metrics).start()
        return schedules

    def _take_data_dir(self):
        """Make the data dir's folders ours alone, lock it, and load the secret key."""
        config = self.config
        for path in (config.data_dir, config.run_dir, config.jobs_dir):
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chmod(path, 0o700)  # ours alone, whatever an older version or a hand made it
        create_folder(config.workers_dir)
        self.lock.acquire()
        try:  # before the database: a key that cannot be used changes nothing
            self.secret_box = secretbox.load_box(config.data_dir, config.secret_keys)
        except BaseException:
            self.lock.release()
            raise

    def _listen(self):
        """Accept requests on the configured address."""
        config = self.config
        fd_limit = raise_fd_limit()
        # The connection-wide body limit is the public one: handlers that read bodies raise
        # it for their request once its sender is known (handlers/base.py); the others
        # (static files, WebSockets) never hold more. Behind the proxy, address and scheme
        # come from the headers it sets, and only those (jobjoker.forwarded); never
        # Tornado's xheaders, which trusts more.
        self.http_server = GuardedHTTPServer(
            forwarded.from_proxy(self.app) if config.trust_proxy else self.app,
            max_body_size=config.max_public_body_size, ssl_options=self._tls_context(),
            idle_connection_timeout=config.idle_connection_timeout,
            max_connections=connection_cap(config, fd_limit),
            # Behind a proxy every connection comes from the proxy's address.
            max_per_address=0 if config.trust_proxy else config.max_connections_per_address)
        self.http_server.listen(config.port, config.host)

    async def _open_database(self, hub):
        """Open the database and take this node's lease before changing anything in it."""
        url = self.config.database_url
        try:
            self.database = models.make_database(url)
            models.database.initialize(self.database)
            self.storage = Storage(self.database, hub)
            await self.storage.call(self._lease_and_migrate)
        except StartupError:
            raise
        except Exception as e:  # driver errors have no common base: report any, then exit
            raise StartupError("cannot open the database %s: %s" % (redact_url(url), e))

    def _lease_and_migrate(self):
        """Writer thread. With the lease table, a live server may hold our node: take the lease
        before migrating, so a refused server changes nothing. Without it (a new database, or
        one older than schema v4) there is no holder: migrate first, then take it."""
        self.database.connect(reuse_if_open=True)
        if self.database.table_exists(models.Node._meta.table_name):
            self.lease.acquire()
        models.migrate(self.database)
        if not self.lease.held:
            self.lease.acquire()

    async def _close_database(self):
        self.lease.stop_heartbeat()
        if self.storage is not None:
            try:
                await self.storage.call(self.lease.release)
            finally:
                await self.storage.close()
                self.storage = None

    async def _remove_orphaned_entries(self, logstore):
        """Delete the chunks of jobs deleted while a crash cut their deletion short."""
        try:
            for job_id in await self.storage.read(logstore.jobs_with_orphaned_entries):
                log.info("job %s: removing the entries its deletion left behind", job_id)
                while await self.storage.transaction(logstore.delete_some, job_id):
                    pass
        except Exception:
            log.exception("removing the entries of deleted jobs failed; the next start retries")

    def _tls_context(self):
        if not self.config.tls:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        except (OSError, ssl.SSLError) as e:
            raise StartupError("cannot load the TLS certificate %s and key %s: %s"
                               % (self.config.tls_cert, self.config.tls_key, e))
        return context

    async def health(self):
        """The server's readiness, or ``Unavailable`` saying what is wrong."""
        # From memory first: a database that does not answer must not hold /health too.
        stuck = self.storage.writing_for()
        if stuck > STUCK_WRITE_SECONDS:
            raise Unavailable("the database has not finished a write for %.0f s: it stores "
                              "nothing (is it locked, or its disk full?); requests that need it "
                              "get 503 after %g s" % (stuck, storage_module.ANSWER_SECONDS))
        try:
            await self.storage.ping()
        except DatabaseUnavailable as e:
            # The ping's "nothing was done: try again shortly" is for a request, not for /health.
            raise Unavailable("the server has no connection to the database (%s); it reconnects "
                              "by itself when the database answers again"
                              % (e.__cause__ or "no connection"), retry_after=1)
        except Unavailable as e:
            raise Unavailable("%s; requests that need it get 503 after %g s"
                              % (e.message, storage_module.ANSWER_SECONDS))
        except peewee.PeeweeException as e:
            raise Unavailable("the database is unavailable: %s" % e)
        supervisors = self.supervisors()
        if not supervisors[0]["connected"]:
            raise Unavailable("the supervisor is not connected")
        full = self.processes.disk_full
        if full is None and free_bytes(self.config.data_dir) == 0:
            full = (time.time(), "no space left in %s" % self.config.data_dir)
        if full is not None:
            raise Unavailable("the disk is full since %s: job entries cannot be stored (%s); "
                              "they wait in the jobs' spool files, and jobs that log more "
                              "lose entries (their logs say how many) until there is room"
                              % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(full[0])),
                                 full[1]))
        return {"status": "ok", "version": __version__, "node": self.config.node,
                "running_jobs": len(self.processes.running),
                "loop_lag_ms": self.loop_monitor.summary(), "supervisors": supervisors}

    def supervisors(self):
        """The state of each supervisor, as ``/health`` and ``/metrics`` show it (see
        ``Supervisors.describe``): the one that forks new jobs first."""
        return self.processes.describe_supervisors()

    async def stop(self, kill_jobs=False):
        """Stop serving; running jobs keep running unless ``kill_jobs``."""
        if self.http_server is not None:
            self.http_server.stop()
        if self.app is not None:
            for stream in list(self.app.settings["open_streams"]):
                stream.close(1001, "server stopping: reconnect with your offsets")
            await self.app.settings["credential_watch"].stop()
            await self.app.settings["audit"].flush()  # repeated failures counted so far
        if self.scheduler is not None:
            await self.scheduler.stop()
        if getattr(self, "clock", None) is not None:
            await self.clock.close()
        if self.processes is not None:
            await self.processes.close(kill_jobs=kill_jobs)
        if self.secret_keeper is not None:
            await self.secret_keeper.stop()
        if self.webhook_sender is not None:
            await self.webhook_sender.stop()
        if self.pruner is not None:
            await self.pruner.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self._close_database()
        if self.loop_monitor is not None:
            self.loop_monitor.stop()
        self.lock.release()


def free_bytes(path):
    """Bytes an unprivileged writer may still use on the file system of ``path``."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize
