"""What a worker's class may declare for its jobs besides ``parameters``, read statically.

Contract: ``SETTINGS`` names each setting (``timeout``, ``max_active``, ``retries``,
``retry_delay``, ``retry_backoff``, ``retry_on_timeout``) with its rule, the one home of each
limit. ``declared(class_node)`` reads those a worker class sets, with ``ast``, never running the
code: a number is a literal or arithmetic of literals (``2 * 60 * 60``), a flag ``True`` or
``False``, and ``None`` is the same as not declaring it; anything else is an error of the
worker's code (``ValidationError`` naming the line and the rule). ``check(name, value)`` checks
a value given another way (a job's own, from JSON: no booleans as numbers) and returns it as
stored, or raises ``ValueError`` with the rule, for the caller to name its field. Imports
nothing of ours but the errors.
"""
import ast
import math
import operator

from jobjoker.errors import ValidationError

MAX_TIMEOUT = 1e9  # seconds (about 31 years): a limit past it is surely a mistake
MAX_ACTIVE = 10000  # a per-worker cap past it caps nothing on one machine
MAX_RETRIES = 100  # attempts after the first: more is a loop, not a retry
MAX_BACKOFF = 100.0  # the factor each retry's delay grows by

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv}


def _seconds(value, low, low_allowed):
    if type(value) not in (int, float) or not math.isfinite(value) or value > MAX_TIMEOUT or \
            value < low or (value == low and not low_allowed):
        raise ValueError
    return float(value)


def _whole(value, low, high):
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        raise ValueError
    return value


def _factor(value):
    if type(value) not in (int, float) or not math.isfinite(value) or \
            not 1 <= value <= MAX_BACKOFF:
        raise ValueError
    return float(value)


def _flag(value):
    if type(value) is not bool:
        raise ValueError
    return value


# name -> (check(value) -> stored value, raising ValueError; the rule, in words)
SETTINGS = {
    "timeout": (lambda v: _seconds(v, 0, False),
                "a positive number of seconds, at most %d" % MAX_TIMEOUT),
    "max_active": (lambda v: _whole(v, 1, MAX_ACTIVE),
                   "a whole number from 1 to %d (jobs of this worker active at once)"
                   % MAX_ACTIVE),
    "retries": (lambda v: _whole(v, 0, MAX_RETRIES),
                "a whole number from 0 to %d (attempts after the first)" % MAX_RETRIES),
    "retry_delay": (lambda v: _seconds(v, 0, True),
                    "a number of seconds from 0 to %d" % MAX_TIMEOUT),
    "retry_backoff": (_factor, "a number from 1 to %g (each retry's delay is the one before "
                               "times it)" % MAX_BACKOFF),
    "retry_on_timeout": (_flag, "True or False"),
}


def rule(name):
    """The rule of setting ``name``, in words."""
    return SETTINGS[name][1]


def check(name, value):
    """``value`` of setting ``name`` as stored (None stays None), or ``ValueError(rule)``."""
    if value is None:
        return None
    try:
        return SETTINGS[name][0](value)
    except (ValueError, TypeError):
        raise ValueError(rule(name))


def _literal(node):
    """The value of a literal (number, flag, None) or of arithmetic on literal numbers;
    ``ValueError`` for anything else (a name, a call, a string): nothing of the worker's is
    run."""
    if isinstance(node, ast.Constant) and (node.value is None or type(node.value) in (
            int, float, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if type(value) not in (int, float):
            raise ValueError("not a number")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left, right = _literal(node.left), _literal(node.right)
        if type(left) not in (int, float) or type(right) not in (int, float):
            raise ValueError("not a number")
        return _ARITHMETIC[type(node.op)](left, right)
    raise ValueError("not a literal")


def declared(class_node):
    """The settings the class body sets (name -> stored value; those set to None or not at
    all are absent), each checked; ``ValidationError`` names the line and the rule."""
    found = {}
    for item in class_node.body:
        targets = item.targets if isinstance(item, ast.Assign) else \
            [item.target] if isinstance(item, ast.AnnAssign) and item.value is not None else []
        for name in [t.id for t in targets if isinstance(t, ast.Name) and t.id in SETTINGS]:
            try:
                value = check(name, _literal(item.value))
            except (ValueError, ZeroDivisionError, OverflowError):
                raise ValidationError("line %d: %s must be %s (a literal like 3600, or "
                                      "arithmetic of literals like 2 * 60 * 60)"
                                      % (item.lineno, name, rule(name)), line=item.lineno)
            found.pop(name, None)
            if value is not None:
                found[name] = value
    return found
