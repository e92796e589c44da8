"""What a request to create jobs must hold, checked before anything is created.

Contract: ``check_job_body`` and ``check_batch_body`` check the shape of a ``POST /jobs`` and a
``POST /jobs/batch`` body (``BadRequest`` saying what to send); ``prepare_rows`` turns job specs
(``{"worker", "parameters"}``) into the rows of new idle jobs, given what each worker declares
(``{name: (declaration or None, problem or None)}``, found by the caller off the loop), and
raises every problem at once, each labelled by its field and, in a batch, its place
(``jobs[3].worker: no worker named 'X'``). Secret values are split from the public parameters
here and sealed by the caller as they are stored. A job's ``timeout`` (seconds, a positive
number: ``check_timeout``) is its own, else the batch's, else its worker's declared one, else
the server's ``--default-timeout``: the effective one is stored with the job (``timeout``), and
its deadline is set when it starts. A ``start_at`` (``clock.parse_start_at``: its own, else the
batch's) schedules the start: it implies ``"start": true``, and ``"start": false`` beside one is
refused. The keys each body takes (``JOB_KEYS``,
``BATCH_KEYS``, ``SPEC_KEYS``) live here; the handlers refuse any other (``jobjoker.bodies``).
Pure: no storage, no processes, no I/O.
"""
import contextlib
import json
import math
import time

from jobjoker import parameters as params
from jobjoker.clock import parse_start_at
from jobjoker.bodies import check_keys
from jobjoker.errors import BadRequest, JobJokerError, TooLarge, ValidationError
from jobjoker.jobstore import new_job_id
from jobjoker.secretbox import MAX_SECRETS_BYTES
from jobjoker.states import JobStatus
from jobjoker.worker_settings import MAX_TIMEOUT

MAX_PARAMETERS_DEPTH = 32
# What each body takes (the handlers refuse any other key, jobjoker.bodies).
JOB_KEYS = ("worker", "parameters", "start", "timeout", "start_at")
BATCH_KEYS = ("jobs", "start", "timeout", "start_at")
SPEC_KEYS = ("worker", "parameters", "timeout", "start_at")

MAX_PROBLEMS_SHOWN = 10  # of an invalid batch, in the one message


@contextlib.contextmanager
def about(field):
    """Label a domain error raised inside with the field of the request it is about."""
    try:
        yield
    except JobJokerError as e:
        if getattr(e, "field", None) is None:
            e.field = field
        raise


def nesting_depth(value):
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else \
            item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def check_job_body(body):
    """``POST /jobs``: the body must be an object; returns its ``start`` flag."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like '
                         '{"worker": "Name", "parameters": {...}}')
    return start_flag(body, body.get("start_at") is not None)


def check_batch_body(body, max_batch):
    """``POST /jobs/batch``: ``(specs, start)`` of a body holding 1 to ``max_batch`` jobs."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like '
                         '{"jobs": [{"worker": "Name", "parameters": {...}}], "start": true}')
    specs = body.get("jobs")
    if specs is None:
        raise BadRequest('"jobs" is missing: send {"jobs": [{"worker": "Name"}, ...]}')
    if not isinstance(specs, list):
        raise BadRequest('"jobs" must be a list of jobs like {"worker": "Name"}')
    if not specs:
        raise BadRequest('"jobs" is empty: send at least one job')
    if len(specs) > max_batch:
        raise BadRequest("the batch holds %d jobs; at most %d go in one request (split it)"
                         % (len(specs), max_batch))
    timeout = batch_timeout(body)
    with about("start_at"):
        start_at = parse_start_at(body.get("start_at"))
    for name, value in (("timeout", timeout), ("start_at", start_at)):
        if value is not None:  # the batch's, for each job that sets none of its own
            specs = [dict(spec, **{name: value}) if isinstance(spec, dict) and
                     spec.get(name) is None else spec for spec in specs]
    return specs, start_flag(body, any(isinstance(spec, dict) and spec.get("start_at")
                                       is not None for spec in specs))


def check_timeout(value):
    """A job's time limit as given (None: not given), or ``BadRequest`` naming the field: a
    positive number of seconds (not true or false, NaN or Infinity), at most ``MAX_TIMEOUT``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        error = BadRequest('"timeout" must be a positive number of seconds, at most %d (or '
                           'null for the worker\'s or the server\'s default), not %s'
                           % (MAX_TIMEOUT, json.dumps(value)[:40] if isinstance(
                               value, (int, float, str, bool)) else type(value).__name__
                              .replace("dict", "object")))
        error.field = "timeout"
        raise error
    return value


def batch_timeout(body):
    """The ``timeout`` given beside ``jobs`` in a batch (for every job without its own)."""
    with about("timeout"):
        return check_timeout(body.get("timeout"))


def start_flag(body, start_at=False):
    """The body's ``start`` (default: whether a ``start_at`` is given, which implies it)."""
    start = body.get("start", start_at)
    if not isinstance(start, bool):
        raise BadRequest('"start" must be true or false')
    if start_at and not start:
        error = BadRequest('"start_at" schedules a start: leave out "start" or send true '
                           '(to create a job that waits for a start command, leave out '
                           '"start_at")')
        error.field = "start_at"
        raise error
    return start


def worker_names(specs):
    """The worker names the specs give (to look up what each declares)."""
    return sorted({spec["worker"] for spec in specs if isinstance(spec, dict)
                   and isinstance(spec.get("worker"), str)})


def prepare_rows(specs, actor, declared, max_parameters_size, batch=False,
                 default_timeout=None):
    """The rows of new idle jobs, one per spec, checked, and the names of the workers that were
    given parameters they do not check (they declare none); raises the problems, each labelled
    by its place in a batch (a single job's first problem as it is). ``declared`` maps a worker
    name to ``(declared parameters, problem, declared settings)`` (``worker_settings``);
    ``default_timeout`` is the server's (``--default-timeout``)."""
    rows, problems, unchecked = [], [], set()
    for index, spec in enumerate(specs):
        try:
            if batch:
                _check_spec(spec)
            rows.append(_prepare_row(spec, actor, declared, max_parameters_size,
                                     default_timeout))
            if declared[spec["worker"]][0] is None and spec.get("parameters"):
                unchecked.add(spec["worker"])
        except JobJokerError as e:
            if not batch:
                raise
            field = getattr(e, "field", None)
            problems.append("jobs[%d]%s: %s" % (index, "." + field if field else "", e.message))
    if problems:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        raise BadRequest("nothing was created: %s%s" % (
            "; ".join(problems[:MAX_PROBLEMS_SHOWN]),
            " (and %d more)" % more if more > 0 else ""))
    return rows, sorted(unchecked)


def _check_spec(spec):
    if not isinstance(spec, dict):
        raise BadRequest('each job must be a JSON object like '
                         '{"worker": "Name", "parameters": {...}}')
    check_keys(spec, SPEC_KEYS, "a job", " (start goes beside jobs, for the whole batch)"
               if "start" in spec else "")


def _encoded_parameters(parameters, max_parameters_size):
    """The parameters (``{}`` for null) once they pass the checks of shape, depth, JSON and
    size; raises what is wrong."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValidationError('"parameters" must be a JSON object or null, not %s'
                              % type(parameters).__name__.replace("dict", "object"))
    if nesting_depth(parameters) > MAX_PARAMETERS_DEPTH:
        raise ValidationError('"parameters" are nested more than %d levels deep'
                              % MAX_PARAMETERS_DEPTH)
    try:
        # Strict JSON: Python's parser lets NaN and Infinity through, and stored they would
        # make every later reply about this job invalid JSON.
        encoded = json.dumps(parameters, ensure_ascii=False, separators=(",", ":"),
                             allow_nan=False)
    except ValueError:
        raise BadRequest('"parameters" must be valid JSON: NaN and Infinity are not '
                         'JSON numbers (use null or a string)')
    if len(encoded.encode()) > max_parameters_size:
        raise TooLarge("parameters take %d bytes; the limit is %d"
                       % (len(encoded.encode()), max_parameters_size))
    return parameters


def _prepare_row(spec, actor, declarations, max_parameters_size, default_timeout=None):
    """The row of a new idle job from one spec, checked; raises (labelled by field)."""
    with about("worker"):
        worker = spec.get("worker")
        if worker is None:
            raise BadRequest('"worker" is missing: name the worker to run')
        if not isinstance(worker, str):
            raise BadRequest('"worker" must be a string naming a worker')
        declared, problem, worker_settings = declarations[worker]
        if problem is not None and not isinstance(problem, ValidationError):
            raise problem
    with about("parameters"):
        parameters = _encoded_parameters(spec.get("parameters"), max_parameters_size)
    with about("timeout"):
        timeout = check_timeout(spec.get("timeout"))
    with about("start_at"):
        start_at = parse_start_at(spec.get("start_at"))
    with about("worker"):
        if problem is not None:  # the worker's file does not pass the check
            raise problem
    secrets = {}
    if declared is not None:
        with about("parameters"):
            parameters = params.validate(declared, parameters)
            parameters, secrets = params.split_secrets(declared, parameters)
            size = len(json.dumps(secrets).encode())
            if size > MAX_SECRETS_BYTES:
                raise TooLarge("the secret parameters take %d bytes as JSON; the limit is %d "
                               "(they are stored sealed, which makes them a third larger)"
                               % (size, MAX_SECRETS_BYTES))
    return {"id": new_job_id(), "worker": worker, "status": JobStatus.IDLE.value,
            "parameters": json.dumps(parameters, ensure_ascii=False),
            "secret_parameters": secrets or None,  # sealed as it is stored, off the loop
            "created": time.time(), "created_by": actor.username if actor else None,
            "start_at": start_at,
            # Its own, else its worker's, else the server's: a later change of either does not
            # change the limit of a job already made.
            "timeout": effective_timeout(timeout, worker_settings.get("timeout"),
                                         default_timeout)}


def effective_timeout(own, worker_timeout, default_timeout):
    """The time limit a job gets: its own, else its worker's, else the server's (or None)."""
    for timeout in (own, worker_timeout, default_timeout):
        if timeout:
            return float(timeout)
    return None
