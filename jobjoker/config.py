"""Configuration: one immutable ``Config`` built from flags, environment, a file and defaults.

Contract: ``load_config(argv_values, environ)`` merges, in falling order of precedence, the values
given on the command line, ``JOBJOKER_*`` environment variables, a TOML config file (``--config`` /
``JOBJOKER_CONFIG``) and the defaults below, checks them, and returns a frozen ``Config``. Each
value is parsed as ``jobjoker.config_options`` says (the option table, the config file); here the
values are merged and checked against each other, a database URL by ``jobjoker.database_url``,
and ``run_as`` by ``jobjoker.least_privilege.check_run_as``. Nothing here reads ``sys.argv`` or
touches the disk beyond reading the config file and, with ``run_as``, the modes of the folders
and files a job must not write or read; it imports nothing of ours but those leaves, the errors
and where a checkout is. ``startup_warnings`` (``jobjoker.least_privilege``) says what the
server should warn of at start (a world-readable config file holding a password, root without
``--run-as``).
"""
import dataclasses
import os
import pathlib
import socket

from jobjoker import checkout
from jobjoker.config_options import OPTIONS, parse_list, parse_option, read_config_file
from jobjoker.database_url import check_database_url
from jobjoker.errors import StartupError
from jobjoker.least_privilege import check_run_as

def default_data_dir():
    """``db/`` beside the code in a checkout, else the user's data directory."""
    if checkout.ROOT is not None:
        return pathlib.Path(checkout.ROOT) / "db"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return pathlib.Path(base) / "jobjoker"


def default_workers_dir(data_dir):
    """``workers/`` beside the code in a checkout, else ``workers/`` in the data dir."""
    if checkout.ROOT is not None:
        return pathlib.Path(checkout.ROOT) / "workers"
    return pathlib.Path(data_dir) / "workers"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host):
    """Whether ``host`` (a listening address, or a Host header's name) names this machine's
    loopback: localhost, 127.0.0.0/8 or ::1 (bracketed or not)."""
    host = host.lower().strip("[]")
    return host in LOOPBACK_NAMES or host.startswith("127.")


SECRET_KEY_VARIABLE = "JOBJOKER_SECRET_KEY"  # Fernet keys, comma-separated; the first seals


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the server needs to start; built once by the composition root."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: pathlib.Path = None
    workers_dir: pathlib.Path = None
    database: str = None  # a URL; None means the SQLite file in data_dir
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL on stop
    # The time limit of a job that sets none and whose worker declares none (None or 0: none).
    default_timeout: float = None
    # The server cap on running jobs, stored in the database at start (0: removed; None: the
    # stored one stays): jobjoker.admission.
    max_active_jobs: int = None
    max_body_size: int = 10 * 1024 * 1024
    # Before sign-in only POST /session takes a body, and a sign-in is tiny: nobody unknown may
    # make the server hold more than this per request.
    max_public_body_size: int = 16 * 1024
    max_body_memory: int = 256 * 1024 * 1024  # request bodies held at once, all requests; 503
    max_worker_size: int = 1024 * 1024
    max_parameters_size: int = 64 * 1024
    max_log_bytes: int = 1024 ** 3  # per job; past it the head and the tail are kept (0: no cap)
    max_result_bytes: int = 1024 * 1024  # a job's result (self.result()), as JSON; over: refused
    max_batch: int = 1000  # jobs in one POST /jobs/batch
    max_page: int = 1000  # the largest page of jobs or audit entries
    max_entry_page: int = 100000  # the largest page of a job's log or response
    max_page_bytes: int = 8 * 1024 * 1024  # a page of entries stops at about this many bytes
    search_seconds: float = 0.5  # a log search answers after about this long (0: one step)
    stream_buffer_bytes: int = 8 * 1024 * 1024  # per subscriber; past it, it is closed
    stream_stall_timeout: float = 30.0  # a subscriber whose socket takes no data this long goes
    stream_memory: int = 256 * 1024 * 1024  # queued for all subscribers together
    max_connections: int = 0  # open client connections at once; 0: 3/4 of the fd limit
    max_connections_per_address: int = 256  # from one client address (not behind a proxy)
    idle_connection_timeout: float = 60.0  # seconds a connection may wait for a request
    tls_cert: pathlib.Path = None  # serve HTTPS with this certificate chain (PEM) ...
    tls_key: pathlib.Path = None  # ... and this private key
    hsts_seconds: int = 0  # Strict-Transport-Security max-age on HTTPS replies (0: not sent)
    allowed_hosts: tuple = ()  # Host header names accepted besides loopback's own
    allowed_origins: tuple = ()  # browser origins allowed to open WebSockets besides our own
    run_as: str = None  # when the server runs as root, jobs run as this user
    trust_proxy: bool = False  # take client address and scheme from X-Forwarded-* headers
    base_path: str = ""  # served under this path prefix ("/jobjoker"); "" is the root
    login_failures: int = 10  # failed logins an account may have in login_window, then 429
    login_failures_per_address: int = 50  # the same for one client address, all accounts
    login_window: float = 300.0
    session_lifetime: float = 12 * 3600.0  # seconds a browser's sign-in lasts
    # Seconds after a job's end during which entries may still be appended to it (masked with
    # its secrets); then its secret values are erased.
    secret_retention: float = 300.0
    node: str = None  # this server's name when several share one database
    node_heartbeat: float = 10.0  # seconds between refreshes of this server's node lease
    node_lease_ttl: float = 30.0  # a node lease of another host unrefreshed this long is dead
    log_level: str = "INFO"
    log_file: pathlib.Path = None  # append the log here (reopened on SIGHUP); None: stderr
    log_format: str = "text"  # LOG_FORMATS: "json" is one object per line
    access_log: bool = True  # a line per request (probes of /health and /metrics at DEBUG)
    slow_callback_seconds: float = 0.25  # log what holds the IOLoop this long (0: never)
    usage_interval: float = 1.0  # seconds between samples of running jobs' resources (0: off)
    webhook_retries: int = 5  # a webhook delivery is tried again this many times, then failed
    webhook_retry_delay: float = 10.0  # seconds before its first retry, doubled at each next
    webhook_timeout: float = 10.0  # seconds to connect to a receiver, and for its whole reply
    # Retention (jobjoker.retention): None keeps every finished job and audit entry.
    keep_days: int = None  # finished jobs that ended more than this many days ago are deleted
    keep_per_worker: int = None  # finished jobs beyond the newest this many of a worker go
    keep_audit_days: int = None  # audit entries older than this many days go
    prune_interval: float = 3600.0  # seconds between the server's prunes (0: never)
    # The keys of the secret parameters (SECRET_KEY_VARIABLE), from the environment only: never
    # a flag (ps shows those) nor the config file. Empty: the data dir's key file.
    secret_keys: tuple = dataclasses.field(default=(), repr=False)

    @property
    def database_url(self):
        """The database URL, with the embedded SQLite file as the default."""
        return self.database or "sqlite:///%s" % (self.data_dir / "jobjoker.sqlite3")

    @property
    def loopback_only(self):
        """True when the server listens on loopback only (so only this machine reaches it)."""
        return is_loopback(self.host)

    @property
    def tls(self):
        return self.tls_cert is not None

    @property
    def jobs_dir(self):
        """Where running jobs keep their spool files (log, response, output, exit record)."""
        return self.data_dir / "jobs"

    @property
    def run_dir(self):
        """Server state that lives only while the server or supervisor runs (lock, socket)."""
        return self.data_dir / "run"




def load_config(flags=None, environ=None, config_file=None):
    """Merge flags > environment > config file > defaults into a checked ``Config``.

    ``flags`` maps option names to values given on the command line (None = not given).
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("JOBJOKER_CONFIG")
    values = read_config_file(config_file) if config_file else {}
    for name, (variable, _) in OPTIONS.items():
        if environ.get(variable, "") != "":
            values[name] = parse_option(name, environ[variable], "environment " + variable)
    for name, value in flags.items():
        values[name] = parse_option(name, value, "option --" + name.replace("_", "-"))
    values.setdefault("data_dir", default_data_dir())
    values.setdefault("workers_dir", default_workers_dir(values["data_dir"]))
    values["data_dir"] = pathlib.Path(values["data_dir"]).expanduser().resolve()
    values["workers_dir"] = pathlib.Path(values["workers_dir"]).expanduser().resolve()
    values.setdefault("node", socket.gethostname())
    values["secret_keys"] = parse_list(environ.get(SECRET_KEY_VARIABLE, ""))
    if not 0 <= values.get("port", 8080) <= 65535:
        raise StartupError("port must be between 0 and 65535 (got %s)" % values["port"])
    values["log_level"] = values.get("log_level", "INFO").upper()
    if values["log_level"] not in LOG_LEVELS:
        raise StartupError("log_level must be one of %s (got %r)"
                           % (", ".join(LOG_LEVELS), values["log_level"]))
    values["log_format"] = values.get("log_format", "text").lower()
    if values["log_format"] not in LOG_FORMATS:
        raise StartupError("log_format must be one of %s (got %r)"
                           % (", ".join(LOG_FORMATS), values["log_format"]))
    if values.get("log_file"):
        values["log_file"] = pathlib.Path(values["log_file"]).expanduser().resolve()
        if not values["log_file"].parent.is_dir():
            raise StartupError("log_file %s: the folder %s does not exist"
                               % (values["log_file"], values["log_file"].parent))
    if values.get("database"):
        check_database_url(values["database"])
    for name in ("max_batch", "max_page", "max_entry_page", "session_lifetime", "max_page_bytes",
                 "max_public_body_size", "max_body_memory", "stream_memory",
                 "max_connections_per_address", "idle_connection_timeout", "max_result_bytes"):
        if name in values and values[name] <= 0:
            raise StartupError("%s must be more than 0 (got %r)" % (name, values[name]))
    if values.get("webhook_timeout", 1) <= 0:  # a receiver given no time could never answer
        raise StartupError("webhook_timeout must be more than 0 (got %r)"
                           % values["webhook_timeout"])
    heartbeat = values.get("node_heartbeat", Config.node_heartbeat)
    lease_ttl = values.get("node_lease_ttl", Config.node_lease_ttl)
    if heartbeat <= 0 or lease_ttl < 2 * heartbeat:
        # A lease must outlive a missed heartbeat, or a live server loses its node to another.
        raise StartupError("node_lease_ttl (%g s) must be at least twice node_heartbeat (%g s), "
                           "which must be more than 0" % (lease_ttl, heartbeat))
    if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
        raise StartupError("TLS needs both --tls-cert and --tls-key")
    for name in ("tls_cert", "tls_key"):
        if values.get(name) and not pathlib.Path(values[name]).is_file():
            raise StartupError("%s %s is not a readable file" % (name, values[name]))
    if values.get("run_as"):
        check_run_as(values["run_as"], values["data_dir"], values["workers_dir"],
                     [values.get("tls_key"), config_file])
    return Config(**values)
