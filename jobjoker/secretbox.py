"""Secret parameter values at rest: sealed with a key the database never holds.

Contract: ``load_box(data_dir, env_keys)`` returns the server's ``SecretBox`` or raises
``StartupError`` saying what to fix. Its keys come from ``JOBJOKER_SECRET_KEY`` (``env_keys``,
read by ``config.load_config``: one or more Fernet keys, comma-separated) when that is set, else
from the key file ``<data dir>/secret.key`` (``KEY_FILE``): one key per line. It is made at the
first start (``O_EXCL``, mode 0600, a fresh key) and refused at every start when it is not a
plain file of the server's user that nobody else may read (``check_private_file``). In either
place the first key seals; every key opens (``MultiFernet``), so a key is rotated by putting a
new one first and keeping the old ones after it until the next start has re-sealed what they
sealed (``SecretBox.reseal``).

``seal(values)`` turns a dict of secret values into the text stored in ``job.secret_parameters``:
``SEALED_PREFIX`` then a Fernet token (AES-128-CBC with HMAC-SHA256, a fresh IV each time, so the
same values never give the same text twice). ``open(stored)`` gives the dict back, from a sealed
text or from a clear JSON object stored by a version before this one (``is_sealed`` tells them
apart); a token none of the keys opens raises ``SecretsUnreadable``, whose message says why (a
lost or changed key) and what to do. Imports nothing of ours but the errors and the config's
name of the environment variable.
"""
import errno
import json
import os
import stat

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from jobjoker.config import SECRET_KEY_VARIABLE as ENV_KEY
from jobjoker.errors import Conflict, StartupError

KEY_FILE = "secret.key"
SEALED_PREFIX = "v1:"  # the format's version: anything else stored there is a legacy clear value
# A job's secret values as JSON: sealed, they grow by about a third, and must still fit a TEXT
# column on MySQL (65,535 bytes).
MAX_SECRETS_BYTES = 32 * 1024
MAKE_KEY = ("python3 -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'")


class SecretsUnreadable(Conflict):
    """Stored secret values that none of the server's keys opens."""


def check_private_file(path, fd=None):
    """Refuse (``StartupError``) a file that is not a plain file of the server's user, or whose
    mode lets its group or others read or write it; ``fd``: an open descriptor of it to check."""
    info = os.fstat(fd) if fd is not None else os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise StartupError("%s is not a regular file: remove it (the server makes a new one) or "
                           "put the key file there" % path)
    if info.st_uid != os.geteuid():
        raise StartupError("%s belongs to uid %d, not to the server's user (uid %d): "
                           "chown %d %s" % (path, info.st_uid, os.geteuid(), os.geteuid(), path))
    if info.st_mode & 0o077:
        raise StartupError("%s has mode %04o: its group or others may use it; it must be its "
                           "owner's alone: chmod 600 %s"
                           % (path, stat.S_IMODE(info.st_mode), path))


def _parse_keys(texts, where):
    keys = []
    for text in texts:
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            keys.append(Fernet(text.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise StartupError("%s holds something that is not a Fernet key (32 bytes, url-safe "
                               "base64: 44 characters); make one with %s" % (where, MAKE_KEY))
    if not keys:
        raise StartupError("%s holds no key; make one with %s" % (where, MAKE_KEY))
    return keys


def _read_key_file(path):
    """The key file's lines, checked to be private; a new file with a fresh key when there is
    none (made with O_EXCL: of two servers starting at once, one makes it, the other reads it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except FileExistsError:
        pass
    else:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StartupError("%s is a symbolic link: put the key file itself there" % path)
        raise StartupError("cannot read the secret key file %s: %s" % (path, e.strerror))
    try:
        check_private_file(path, fd)
        with os.fdopen(fd, "r", encoding="ascii", errors="replace", closefd=False) as f:
            return f.read(64 * 1024).splitlines()
    finally:
        os.close(fd)


def load_box(data_dir, env_keys=()):
    """The server's ``SecretBox``: keys from the environment when given, else the key file."""
    if env_keys:
        return SecretBox(_parse_keys(env_keys, "the environment variable %s" % ENV_KEY),
                         "the environment variable %s" % ENV_KEY)
    path = os.path.join(os.fspath(data_dir), KEY_FILE)
    return SecretBox(_parse_keys(_read_key_file(path), "the key file %s" % path),
                     "the key file %s" % path)


def is_sealed(stored):
    return stored is not None and stored.startswith(SEALED_PREFIX)


class SecretBox:
    """Seals and opens the secret values of jobs."""

    def __init__(self, keys, where):
        self._first = keys[0]
        self._fernet = MultiFernet(keys)
        self.where = where  # where the keys come from, for messages

    def seal(self, values):
        """The stored form of ``values`` (a dict), or None for none."""
        if not values:
            return None
        return SEALED_PREFIX + self._fernet.encrypt(
            json.dumps(values).encode("utf-8")).decode("ascii")

    def open(self, stored, job_id=None):
        """The dict of secret values ``stored`` holds ({} for None); ``SecretsUnreadable`` when
        no key opens it."""
        if not stored:
            return {}
        if not is_sealed(stored):
            return json.loads(stored)  # stored in clear by an older version
        try:
            return json.loads(self._fernet.decrypt(stored[len(SEALED_PREFIX):].encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise SecretsUnreadable(
                "the secret parameters of job %s cannot be read with the key in %s (it was "
                "sealed with another key: the key was lost or changed); put the key it was "
                "sealed with back, or after the new one as an old key, or create the job again"
                % (job_id or "?", self.where))

    def reseal(self, stored):
        """``stored`` sealed with the first key (a clear legacy value, or one sealed with an
        old key), or None when it already is; ``SecretsUnreadable`` when no key opens it."""
        if not is_sealed(stored):
            return self.seal(json.loads(stored))
        token = stored[len(SEALED_PREFIX):].encode("ascii")
        try:
            self._first.decrypt(token)
            return None
        except InvalidToken:
            pass
        try:
            return SEALED_PREFIX + self._fernet.rotate(token).decode("ascii")
        except InvalidToken:
            raise SecretsUnreadable("sealed with a key not in %s" % self.where)
