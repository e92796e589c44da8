"""The worker repository: worker files in the workers directory, checked without importing them.

Contract: a worker is ``<workers_dir>/<Name>.py`` defining ``class <Name>(jobjoker.Worker)`` with
a ``run`` method. Names must match ``NAME_PATTERN`` (checked on the decoded name, so no path can
leave the folder). ``save(name, code)`` parses the code with ``ast`` (never executing it in the
server), refuses code that does not parse (``ValidationError`` with the line) or lacks the class,
and writes atomically (temp file + rename), so a job never loads half a file. Descriptions come
from the class docstring and are cached by content hash. A worker may declare settings for its
jobs (``timeout = 3600``, ``max_active = 2``, ``retries = 3``...: ``jobjoker.worker_settings``),
read statically like ``parameters``: a bad one is an error of the worker's code, shown and
refused like a bad ``parameters``.
"""
import ast
import hashlib
import os
import re
import tempfile

from jobjoker import parameters, worker_settings
from jobjoker.errors import BadRequest, Conflict, NotFound, TooLarge, ValidationError

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
NAME_RULE = "a letter, then up to 63 letters, digits or underscores"


FOLDER_MODE = 0o755  # what a --run-as job needs to import the helpers beside its worker


def create_folder(path):
    """Make the workers folder ``path`` if it is not there, with each folder made for it
    ``FOLDER_MODE`` (the server's umask would make them 0700): a ``--run-as`` job imports the
    helpers beside its worker by path, so it must reach and list the folder. The code is no
    secret from the jobs that run it; an existing folder keeps its mode (the operator's)."""
    path = os.path.abspath(os.fspath(path))
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder)
        except FileExistsError:  # made meanwhile (another save): it is the maker's
            continue
        os.chmod(folder, FOLDER_MODE)


def check_name(name):
    """Return ``name`` if it is a valid worker name, else raise ``BadRequest``."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise BadRequest("invalid worker name %r: a worker name is %s" % (name, NAME_RULE))
    return name


def _is_worker_base(node):
    # class X(Worker) or class X(jobjoker.Worker) (or any module alias ending in .Worker)
    return ((isinstance(node, ast.Name) and node.id == "Worker")
            or (isinstance(node, ast.Attribute) and node.attr == "Worker"))


def _declared_parameters(class_node):
    """The class's literal ``parameters = {...}``, checked (None when it declares none)."""
    for item in class_node.body:
        targets = item.targets if isinstance(item, ast.Assign) else \
            [item.target] if isinstance(item, ast.AnnAssign) and item.value is not None else []
        if any(isinstance(t, ast.Name) and t.id == "parameters" for t in targets):
            try:
                value = ast.literal_eval(item.value)
            except ValueError:
                raise ValidationError(
                    "line %d: parameters must be a literal dict (no names or calls in it), so "
                    "it can be read without running the code" % item.lineno, line=item.lineno)
            return parameters.parse_declaration(value, item.lineno)
    return None


def inspect_code(name, code):
    """Check worker source statically; return (docstring, declared parameters or None).

    See ``inspect_worker``, which tells the declared time limit too.
    """
    return inspect_worker(name, code)[:2]


def inspect_worker(name, code):
    """Check worker source statically; return (docstring, declared parameters or None, declared
    settings: ``worker_settings.declared``, a dict of those it sets).

    Raises ``ValidationError``, also for code nested too deeply for Python's parser to read
    (which would raise ``RecursionError`` or ``MemoryError`` out of ``ast``).

    ``code`` is best given as the file's bytes: parsed as bytes, it is read as the runner will
    compile it (a UTF-8 byte order mark and a coding declaration are honoured).
    """
    try:
        return _inspect_code(name, code)
    except (RecursionError, MemoryError):
        raise ValidationError("the code is nested too deeply to be parsed (an expression or a "
                              "literal of thousands of levels): write it flatter")


def _inspect_code(name, code):
    try:
        tree = ast.parse(code, filename="%s.py" % name)
    except SyntaxError as e:
        if e.lineno is None:  # e.g. a NUL byte: Python names no line
            raise ValidationError("the code cannot be parsed: %s" % e.msg)
        raise ValidationError("line %s: %s" % (e.lineno, e.msg), line=e.lineno)
    except ValueError as e:  # a NUL byte, on older Pythons (newer: SyntaxError, no line)
        raise ValidationError("the code cannot be parsed: %s" % e)
    if not tree.body:  # nothing, blank lines or comments: say so, not "must define class X"
        raise ValidationError("the worker's code is empty: a worker is a Python file defining "
                              "class %s(jobjoker.Worker) with a run(self) method" % name)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            if not any(_is_worker_base(base) for base in node.bases):
                raise ValidationError(
                    "line %d: class %s must subclass jobjoker.Worker" % (node.lineno, name),
                    line=node.lineno)
            if not any(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                       and item.name == "run" for item in node.body):
                raise ValidationError(
                    "line %d: class %s must define a run(self) method" % (node.lineno, name),
                    line=node.lineno)
            return (ast.get_docstring(node) or "", _declared_parameters(node),
                    worker_settings.declared(node))
    raise ValidationError("the code must define class %s(jobjoker.Worker) at top level "
                          "(the class is named like the worker)" % name)


def _signature(stat):
    """What changes whenever a file's content may have: its inode, size, modification time and
    change time (ctime, which no tool can set back, unlike the mtime that cp -p and rsync -t
    copy), to the nanosecond."""
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WorkerRepository:
    """Lists, reads, saves and deletes worker files."""

    def __init__(self, workers_dir, max_size):
        self.workers_dir = os.fspath(workers_dir)
        self.max_size = max_size
        self._descriptions = {}  # name -> (content hash, (description, declared parameters))
        # name -> (file signature, declared parameters, problem, declared time limit)
        self._declarations = {}

    def path(self, name):
        return os.path.join(self.workers_dir, check_name(name) + ".py")

    def exists(self, name):
        return os.path.isfile(self.path(name))

    def names(self):
        try:
            entries = list(os.scandir(self.workers_dir))
        except FileNotFoundError:
            return []
        # a folder named like a worker is not one (opening it would fail the whole list)
        return sorted(entry.name[:-3] for entry in entries
                      if entry.name.endswith(".py") and NAME_PATTERN.fullmatch(entry.name[:-3])
                      and entry.is_file())

    def list(self):
        """Every worker's summary, by name."""
        workers = []
        for name in self.names():
            try:
                workers.append(self.get(name))
            except NotFound:  # deleted while we listed
                pass
        return workers

    def get(self, name):
        """A worker's summary: name, description, size, modified time, content hash, and each
        of its settings (``worker_settings.SETTINGS``: ``timeout``, ``max_active``... None when
        it declares none)."""
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                stat = os.fstat(f.fileno())
                code = f.read()
        except (FileNotFoundError, IsADirectoryError):  # a folder named like it is not a worker
            raise NotFound("no worker named %r" % name)
        digest = "sha256:" + hashlib.sha256(code).hexdigest()
        description, declared, error, settings = self._inspect(name, digest, code)
        return dict({
            "name": name,
            "description": description,
            "error": error,
            "parameters": parameters.public_declaration(declared),
            "size": stat.st_size,
            "modified": stat.st_mtime,
            "hash": digest,
        }, **{setting: settings.get(setting) for setting in worker_settings.SETTINGS})

    def declared_parameters(self, name):
        """What the worker declares about its parameters (None when it declares nothing).

        Raises ``NotFound``, or ``ValidationError`` for a file that does not pass the check
        (one put there by hand): its declaration, and so its secrets, cannot be trusted, so it
        runs no job. The answer is kept until the file changes (``known_declaration``).
        """
        return self.declaration(name)[0]

    def declaration(self, name):
        """``(declared parameters, declared settings)`` of the worker (None, and a dict of the
        settings it sets); raises as ``declared_parameters``."""
        path = self.path(name)
        try:
            with open(path, "rb") as f:
                stat = os.fstat(f.fileno())
                code = f.read()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("no worker named %r" % name)
        try:
            _, declared, settings = inspect_worker(name, code)
            problem = None
        except ValidationError as e:
            declared, settings, problem = None, {}, ValidationError(
                "worker %s cannot run jobs until its code is fixed: %s" % (name, e.message),
                line=e.line)
        self._declarations[name] = (_signature(stat), declared, problem, settings)
        if problem is not None:
            raise problem
        return declared, settings

    def known_declaration(self, name):
        """``(declared, problem, settings)`` as ``declaration`` last found them, if the file has
        not changed since (one ``stat``, no read); None otherwise. ``problem`` is the error a
        job of it gets (``NotFound`` when the file is gone)."""
        try:
            signature = _signature(os.stat(self.path(name)))
        except (FileNotFoundError, NotADirectoryError):
            return None, NotFound("no worker named %r" % name), {}
        cached = self._declarations.get(name)
        if cached is None or cached[0] != signature:
            return None
        return cached[1], cached[2], cached[3]

    def _inspect(self, name, digest, code):
        """(description, declared parameters, why the file is not a valid worker or None,
        declared settings), cached by content hash."""
        # Keyed by content, not (mtime, size): a same-size rewrite within one timestamp tick, or
        # a copy that keeps its mtime (cp -p, rsync -t), would otherwise show the old docstring.
        cached = self._descriptions.get(name)
        if cached and cached[0] == digest:
            return cached[1]
        try:
            description, declared, settings = inspect_worker(name, code)
            inspected = (description, declared, None, settings)
        except ValidationError as e:  # a file put there by hand may be broken
            inspected = ("(invalid worker: %s)" % e.message, None, e.message, {})
        self._descriptions[name] = (digest, inspected)
        return inspected

    def code(self, name):
        """The worker's source as text."""
        try:
            with open(self.path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound("no worker named %r" % name)

    def save(self, name, code_bytes):
        """Check and atomically write a worker; returns (summary, created)."""
        check_name(name)
        if len(code_bytes) > self.max_size:
            raise TooLarge("worker code is %d bytes; the limit is %d"
                           % (len(code_bytes), self.max_size))
        try:
            code_bytes.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadRequest("worker code must be UTF-8 text (invalid byte at offset %d)"
                             % e.start)
        inspect_code(name, code_bytes)
        create_folder(self.workers_dir)
        path = self.path(name)
        if os.path.isdir(path):
            raise Conflict("a folder named %s.py is in the workers folder; it must be moved "
                           "before a worker of that name can be saved" % name)
        created = not os.path.exists(path)
        fd, tmp = tempfile.mkstemp(prefix=".%s." % name, suffix=".tmp", dir=self.workers_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(code_bytes)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            _fsync_dir(self.workers_dir)  # the rename itself must survive a power cut
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return self.get(name), created

    def delete(self, name):
        """Remove a worker file; returns its last summary."""
        summary = self.get(name)
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            raise NotFound("no worker named %r" % name)
        self._descriptions.pop(name, None)
        return summary
