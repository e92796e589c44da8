"""Configuration: one immutable ``Config`` built from flags, environment, a file and defaults.

Contract: ``load_config(argv_values, environ)`` merges, in falling order of precedence, the values
given on the command line, ``JOBJOKER_*`` environment variables, a TOML config file (``--config`` /
``JOBJOKER_CONFIG``) and the defaults below, checks them, and returns a frozen ``Config``. Nothing
here reads ``sys.argv`` or touches the disk beyond reading the config file and, with ``run_as``,
the modes of the folders and files a job must not write or read (``check_run_as``); it imports
nothing of ours but the errors and where a checkout is. ``startup_warnings`` says what the
server should warn of at start (a world-readable config file holding a password, root without
``--run-as``).
"""
import dataclasses
import os
import pathlib
import re
import socket
import stat
import tomllib
import urllib.parse

from jobjoker import checkout
from jobjoker.bodies import did_you_mean
from jobjoker.errors import StartupError


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
DATABASE_SCHEMES = ("sqlite", "mysql", "mysql+pymysql", "postgres", "postgresql")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything the server needs to start; built once by the composition root."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: pathlib.Path = None
    workers_dir: pathlib.Path = None
    database: str = None  # a URL; None means the SQLite file in data_dir
    stop_grace: float = 10.0  # seconds between SIGTERM and SIGKILL on stop
    max_body_size: int = 10 * 1024 * 1024
    # Before sign-in only POST /session takes a body, and a sign-in is tiny: nobody unknown may
    # make the server hold more than this per request.
    max_public_body_size: int = 16 * 1024
    max_body_memory: int = 256 * 1024 * 1024  # request bodies held at once, all requests; 503
    max_worker_size: int = 1024 * 1024
    max_parameters_size: int = 64 * 1024
    max_log_bytes: int = 1024 ** 3  # per job; past it the head and the tail are kept (0: no cap)
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


def _words(value):
    """A list option: a TOML list, or a comma-separated string."""
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


_words.__name__ = "comma-separated list"


def _hosts(value):
    """Host names compare case-insensitively: keep them lower-case."""
    return tuple(host.lower() for host in _words(value))


_hosts.__name__ = "comma-separated list"


def _flag(value):
    """A yes/no option: true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


_flag.__name__ = "yes/no value"

# A path prefix's segments: what a URL path may hold unescaped, and no "." or ".." segment.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


def _base_path(value):
    """A path prefix: ``/jobjoker`` (a trailing slash is dropped); ``""`` or ``/`` is the root."""
    text = str(value).strip().rstrip("/")
    if text and (not text.startswith("/") or not all(
            _PATH_SEGMENT.fullmatch(segment) for segment in text[1:].split("/"))):
        raise ValueError(value)
    return text


_base_path.__name__ = "path prefix (e.g. /jobjoker: /NAME segments of letters, digits, . _ ~ -)"

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def _size(value):
    """A size in bytes: ``1048576``, ``512K``, ``64M``, ``1G`` (binary units, ``iB``/``B``
    optional)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower().replace(" ", "")
    for suffix in ("ib", "b"):
        if text.endswith(suffix) and text[:-len(suffix)][-1:].isalpha():
            text = text[:-len(suffix)]
            break
    unit = text[-1:] if text[-1:].isalpha() else ""
    if unit not in _SIZE_UNITS:
        raise ValueError(value)
    number = float(text[:len(text) - len(unit)])
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(value)
    return int(number * _SIZE_UNITS[unit])


_size.__name__ = "size in bytes (e.g. 1048576, 512K, 64M, 1G)"

# name -> (environment variable, parser). The order is the order of --help.
OPTIONS = {
    "host": ("JOBJOKER_HOST", str),
    "port": ("JOBJOKER_PORT", int),
    "data_dir": ("JOBJOKER_DATA_DIR", pathlib.Path),
    "workers_dir": ("JOBJOKER_WORKERS_DIR", pathlib.Path),
    "database": ("JOBJOKER_DATABASE_URL", str),
    "stop_grace": ("JOBJOKER_STOP_GRACE", float),
    "max_body_size": ("JOBJOKER_MAX_BODY_SIZE", int),
    "max_public_body_size": ("JOBJOKER_MAX_PUBLIC_BODY_SIZE", _size),
    "max_body_memory": ("JOBJOKER_MAX_BODY_MEMORY", _size),
    "max_worker_size": ("JOBJOKER_MAX_WORKER_SIZE", int),
    "max_parameters_size": ("JOBJOKER_MAX_PARAMETERS_SIZE", int),
    "max_log_bytes": ("JOBJOKER_MAX_LOG_BYTES", _size),
    "max_batch": ("JOBJOKER_MAX_BATCH", int),
    "max_page": ("JOBJOKER_MAX_PAGE", int),
    "max_entry_page": ("JOBJOKER_MAX_ENTRY_PAGE", int),
    "max_page_bytes": ("JOBJOKER_MAX_PAGE_BYTES", _size),
    "search_seconds": ("JOBJOKER_SEARCH_SECONDS", float),
    "stream_buffer_bytes": ("JOBJOKER_STREAM_BUFFER_BYTES", int),
    "stream_stall_timeout": ("JOBJOKER_STREAM_STALL_TIMEOUT", float),
    "stream_memory": ("JOBJOKER_STREAM_MEMORY", _size),
    "max_connections": ("JOBJOKER_MAX_CONNECTIONS", int),
    "max_connections_per_address": ("JOBJOKER_MAX_CONNECTIONS_PER_ADDRESS", int),
    "idle_connection_timeout": ("JOBJOKER_IDLE_CONNECTION_TIMEOUT", float),
    "tls_cert": ("JOBJOKER_TLS_CERT", pathlib.Path),
    "tls_key": ("JOBJOKER_TLS_KEY", pathlib.Path),
    "hsts_seconds": ("JOBJOKER_HSTS_SECONDS", int),
    "allowed_hosts": ("JOBJOKER_ALLOWED_HOSTS", _hosts),
    "allowed_origins": ("JOBJOKER_ALLOWED_ORIGINS", _words),
    "run_as": ("JOBJOKER_RUN_AS", str),
    "trust_proxy": ("JOBJOKER_TRUST_PROXY", _flag),
    "base_path": ("JOBJOKER_BASE_PATH", _base_path),
    "login_failures": ("JOBJOKER_LOGIN_FAILURES", int),
    "login_failures_per_address": ("JOBJOKER_LOGIN_FAILURES_PER_ADDRESS", int),
    "login_window": ("JOBJOKER_LOGIN_WINDOW", float),
    "session_lifetime": ("JOBJOKER_SESSION_LIFETIME", float),
    "secret_retention": ("JOBJOKER_SECRET_RETENTION", float),
    "node": ("JOBJOKER_NODE", str),
    "node_heartbeat": ("JOBJOKER_NODE_HEARTBEAT", float),
    "node_lease_ttl": ("JOBJOKER_NODE_LEASE_TTL", float),
    "log_level": ("JOBJOKER_LOG_LEVEL", str),
    "log_file": ("JOBJOKER_LOG_FILE", pathlib.Path),
    "log_format": ("JOBJOKER_LOG_FORMAT", str),
    "access_log": ("JOBJOKER_ACCESS_LOG", _flag),
    "slow_callback_seconds": ("JOBJOKER_SLOW_CALLBACK_SECONDS", float),
}


def _parse(name, raw, source):
    parser = OPTIONS[name][1]
    try:
        value = parser(raw)
    except (TypeError, ValueError):
        raise StartupError("%s: %s=%r is not a valid %s" % (source, name, raw, parser.__name__))
    if parser in (int, float, _size) and value < 0:
        raise StartupError("%s: %s must not be negative (got %r)" % (source, name, raw))
    return value


def read_config_file(path):
    """The option values in a TOML file (top-level keys, or a ``[jobjoker]`` table)."""
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        raise StartupError("config file %s does not exist" % path)
    except tomllib.TOMLDecodeError as e:
        raise StartupError("config file %s is not valid TOML: %s" % (path, e))
    table = document.get("jobjoker", document)
    unknown = sorted(set(table) - set(OPTIONS))
    if unknown:
        named = []
        for name in unknown:
            guess = did_you_mean(name, OPTIONS)
            named.append(name + (" (did you mean %s?)" % guess if guess else ""))
        raise StartupError("config file %s: unknown option(s) %s; known: %s"
                           % (path, ", ".join(named), ", ".join(OPTIONS)))
    return {name: _parse(name, value, "config file %s" % path) for name, value in table.items()}


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
            values[name] = _parse(name, environ[variable], "environment " + variable)
    for name, value in flags.items():
        values[name] = _parse(name, value, "option --" + name.replace("_", "-"))
    values.setdefault("data_dir", default_data_dir())
    values.setdefault("workers_dir", default_workers_dir(values["data_dir"]))
    values["data_dir"] = pathlib.Path(values["data_dir"]).expanduser().resolve()
    values["workers_dir"] = pathlib.Path(values["workers_dir"]).expanduser().resolve()
    values.setdefault("node", socket.gethostname())
    values["secret_keys"] = _words(environ.get(SECRET_KEY_VARIABLE, ""))
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
                 "max_connections_per_address", "idle_connection_timeout"):
        if name in values and values[name] <= 0:
            raise StartupError("%s must be more than 0 (got %r)" % (name, values[name]))
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


def check_run_as(username, data_dir=None, workers_dir=None, secrets=()):
    """Jobs can run as another user only when the server can switch to it (as root), and only
    if that user cannot rewrite the code that jobs run (the workers folder, what is in it, the
    folders above it) nor own the data dir or read the server's ``secrets`` (files)."""
    import pwd
    try:
        user = pwd.getpwnam(username)
    except KeyError:
        raise StartupError("run_as: there is no user %r on this system" % username)
    if os.geteuid() != 0:
        raise StartupError("run_as needs the server to run as root (it runs as uid %d)"
                           % os.geteuid())
    groups = set(os.getgrouplist(username, user.pw_gid))
    if workers_dir is not None and os.path.exists(workers_dir):
        above = _ancestors(workers_dir)
        for path in above + _tree(workers_dir):
            if _may(path, user.pw_uid, groups, 0o2, ancestor=path in above):
                raise StartupError(
                    "run_as: %s is writable by %s, who could then change the code of every "
                    "job: make the workers folder, everything in it and the folders above it "
                    "belong to root and not group- or world-writable (chown -R root: %s; "
                    "chmod -R go-w %s)" % (path, username, workers_dir, workers_dir))
    if data_dir is not None:
        for path in [data_dir] + _ancestors(data_dir):
            if _may(path, user.pw_uid, groups, 0o2, ancestor=path != data_dir):
                raise StartupError("run_as: the data dir %s is not safe from %s (%s belongs "
                                   "to or is writable by that user): give it to root"
                                   % (data_dir, username, path))
    for path in secrets:
        if path and _may(path, user.pw_uid, groups, 0o4):
            raise StartupError("run_as: %s is readable by %s, whom jobs run as: chmod 600 %s"
                               % (path, username, path))


def _may(path, uid, groups, permission, ancestor=False):
    """Whether user ``uid`` (in ``groups``) has ``permission`` (0o4 read, 0o2 write) on
    ``path`` (what a link there points to), or owns it. In a sticky folder above (/tmp) a user
    may write, but not rename what is not theirs."""
    try:
        info = os.stat(path)
    except OSError:
        return False  # not there (a dangling link): nothing to write or read
    if info.st_uid == uid:
        return True
    if ancestor and info.st_mode & 0o1000:
        return False
    return bool(info.st_mode & permission) or bool(
        info.st_mode & (permission << 3) and info.st_gid in groups)


def _ancestors(path):
    path = pathlib.Path(path)
    return [str(parent) for parent in path.parents]


def _tree(folder):
    paths = [str(folder)]
    for root, folders, files in os.walk(folder):
        paths.extend(os.path.join(root, name) for name in folders + files)
    return paths


def startup_warnings(config, config_file=None, environ=None, euid=None):
    """What the server should warn of at start (it still starts): its config file readable by
    every user of the machine while it holds a password (``--database``'s URL; the secret keys
    are never taken from the file), and running as root without ``--run-as``, where every job
    runs as root. ``config_file`` as given to ``load_config`` (else ``JOBJOKER_CONFIG``)."""
    warnings = []
    environ = os.environ if environ is None else environ
    config_file = config_file or environ.get("JOBJOKER_CONFIG")
    if config_file:
        try:
            mode = os.stat(config_file).st_mode
            database = read_config_file(config_file).get("database")
        except (OSError, StartupError):
            mode, database = 0, None  # load_config read it a moment ago: gone since
        if mode & 0o004 and database and urllib.parse.urlsplit(database).password:
            warnings.append(
                "the config file %s holds the database password and every user of this machine "
                "may read it (mode %04o): chmod 640 %s (and chgrp it to the server's group)"
                % (config_file, stat.S_IMODE(mode), config_file))
    if (os.geteuid() if euid is None else euid) == 0 and not config.run_as:
        warnings.append(
            "running as root without --run-as: every job runs as root and can change anything "
            "on this machine; give jobs an unprivileged user with --run-as USER, or run the "
            "server as an unprivileged user (see SECURITY.md)")
    return warnings


def check_database_url(url):
    """Refuse a database URL that cannot work, saying what a good one looks like."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DATABASE_SCHEMES:
        raise StartupError("database URL %r: the scheme must be one of %s, e.g. "
                           "sqlite:///path/to/file.sqlite3 or mysql://user:pass@host:3306/db"
                           % (redact_url(url), ", ".join(DATABASE_SCHEMES)))
    if not parts.path.strip("/"):
        raise StartupError("database URL %r names no database (the path after the host)"
                           % redact_url(url))


def redact_url(url):
    """A database URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":%s@" % parts.password, ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url
