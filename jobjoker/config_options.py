"""The configuration's options: each one's environment variable and parser, and the config file.

Contract: ``OPTIONS`` maps every option's name to its ``JOBJOKER_*`` environment variable and
the parser of its value, in the order of ``--help``; a parser takes a string (or a TOML value)
and raises ``ValueError`` on what it cannot read, and its ``__name__`` says what it expects.
``parse_option(name, raw, source)`` is the parsed value, or a ``StartupError`` naming the
``source`` (a flag, a variable, the file), the option and what a good value looks like; a number
or size must not be negative. ``parse_list`` reads a list option (a TOML list, or a
comma-separated string). ``read_config_file(path)`` is the parsed values of a TOML file's
top-level keys, or of its ``[jobjoker]`` table; a missing file, bad TOML or an unknown option
(with a "did you mean") is a ``StartupError``. Nothing here checks one option against another
(``jobjoker.config`` does) or touches the disk beyond reading that file; it imports nothing of
ours but the errors and the "did you mean".
"""
import pathlib
import re
import tomllib

from jobjoker.bodies import did_you_mean
from jobjoker.errors import StartupError


def parse_list(value):
    """A list option: a TOML list, or a comma-separated string."""
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


parse_list.__name__ = "comma-separated list"


def _hosts(value):
    """Host names compare case-insensitively: keep them lower-case."""
    return tuple(host.lower() for host in parse_list(value))


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

def _positive_whole(value):
    """A count of days or jobs: a whole number above 0 (``30``; not ``0``, ``-1`` or ``1.5``)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.isdigit():
            raise ValueError(value)
        number = int(text)
    if number <= 0:
        raise ValueError(value)
    return number


_positive_whole.__name__ = "positive whole number (1 or more)"

# name -> (environment variable, parser). The order is the order of --help.
OPTIONS = {
    "host": ("JOBJOKER_HOST", str),
    "port": ("JOBJOKER_PORT", int),
    "data_dir": ("JOBJOKER_DATA_DIR", pathlib.Path),
    "workers_dir": ("JOBJOKER_WORKERS_DIR", pathlib.Path),
    "database": ("JOBJOKER_DATABASE_URL", str),
    "stop_grace": ("JOBJOKER_STOP_GRACE", float),
    "default_timeout": ("JOBJOKER_DEFAULT_TIMEOUT", float),
    "max_body_size": ("JOBJOKER_MAX_BODY_SIZE", int),
    "max_public_body_size": ("JOBJOKER_MAX_PUBLIC_BODY_SIZE", _size),
    "max_body_memory": ("JOBJOKER_MAX_BODY_MEMORY", _size),
    "max_worker_size": ("JOBJOKER_MAX_WORKER_SIZE", int),
    "max_parameters_size": ("JOBJOKER_MAX_PARAMETERS_SIZE", int),
    "max_log_bytes": ("JOBJOKER_MAX_LOG_BYTES", _size),
    "max_result_bytes": ("JOBJOKER_MAX_RESULT_BYTES", _size),
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
    "allowed_origins": ("JOBJOKER_ALLOWED_ORIGINS", parse_list),
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
    "usage_interval": ("JOBJOKER_USAGE_INTERVAL", float),
    "max_active_jobs": ("JOBJOKER_MAX_ACTIVE_JOBS", int),
    "webhook_retries": ("JOBJOKER_WEBHOOK_RETRIES", int),
    "webhook_retry_delay": ("JOBJOKER_WEBHOOK_RETRY_DELAY", float),
    "webhook_timeout": ("JOBJOKER_WEBHOOK_TIMEOUT", float),
    "keep_days": ("JOBJOKER_KEEP_DAYS", _positive_whole),
    "keep_per_worker": ("JOBJOKER_KEEP_PER_WORKER", _positive_whole),
    "keep_audit_days": ("JOBJOKER_KEEP_AUDIT_DAYS", _positive_whole),
    "prune_interval": ("JOBJOKER_PRUNE_INTERVAL", float),
}


def parse_option(name, raw, source):
    """The value of option ``name`` given as ``raw`` by ``source``, or a ``StartupError``."""
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
    return {name: parse_option(name, value, "config file %s" % path)
            for name, value in table.items()}
