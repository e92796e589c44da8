"""Parameters a worker declares: checked, defaulted, and kept secret where it says so.

Contract: a worker may declare its parameters as a class attribute holding a literal dict::

    parameters = {
        "url": {"type": "string", "required": True, "description": "What to fetch"},
        "count": {"type": "integer", "default": 10, "minimum": 1, "maximum": 1000},
        "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
        "password": {"type": "string", "secret": True},
    }

``parse_declaration`` checks such a dict (found statically, never by importing the worker) and
raises ``ValidationError`` saying what is wrong. ``validate`` checks a job's parameters against
it, fills in defaults and refuses unknown names (with a "did you mean"), listing every problem at
once. A worker that declares nothing (``None``, unlike ``{}``: none taken) gets whatever a job
gives, unchecked, and ``unchecked_note`` is what replies and the command line say of it.
``split_secrets`` separates the values of ``secret`` parameters, which are stored apart, passed
to the job in memory only, never shown again by the API, and masked (``MASK``) wherever they
would appear in the job's log or response (``Masker``). Imports nothing of ours but the errors,
the entry format and the did-you-mean of ``jobjoker.bodies``.
"""
from jobjoker.bodies import did_you_mean
from jobjoker.errors import ValidationError
from jobjoker.spool import escape

TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
KEYS = {"type", "required", "default", "description", "secret", "enum", "minimum", "maximum",
        "label"}
MASK = "********"
MIN_MASKED = 4  # characters; a shorter secret is not masked (it would mask noise)


def _type_ok(kind, value):
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False  # JSON true is not a number, whatever Python thinks
    return isinstance(value, TYPES[kind])


def parse_declaration(declared, line=None):
    """The checked declaration (a dict of name -> spec), or ``ValidationError``."""
    def fail(message):
        raise ValidationError("line %s: %s" % (line, message) if line else message, line=line)

    if not isinstance(declared, dict):
        fail("parameters must be a dict of name -> {\"type\": ...}")
    checked = {}
    for name, spec in declared.items():
        if not isinstance(name, str) or not name.isidentifier():
            fail("parameter names must be identifiers (got %r)" % (name,))
        if not isinstance(spec, dict):
            fail("parameter %s: its spec must be a dict like {\"type\": \"string\"}" % name)
        unknown = set(spec) - KEYS
        if unknown:
            fail("parameter %s: unknown key(s) %s; known: %s"
                 % (name, ", ".join(sorted(unknown)), ", ".join(sorted(KEYS))))
        kind = spec.get("type", "string")
        if kind not in TYPES:
            fail("parameter %s: type must be one of %s" % (name, ", ".join(TYPES)))
        for text in ("description", "label"):
            if not isinstance(spec.get(text, ""), str):
                fail("parameter %s: %s must be a string" % (name, text))
        for flag in ("required", "secret"):
            if not isinstance(spec.get(flag, False), bool):
                fail("parameter %s: %s must be True or False" % (name, flag))
        if "enum" in spec and (not isinstance(spec["enum"], list) or not all(
                _type_ok(kind, v) for v in spec["enum"])):
            fail("parameter %s: enum must be a list of %s values" % (name, kind))
        for bound in ("minimum", "maximum"):
            if bound in spec and (kind not in ("integer", "number")
                                  or not _type_ok("number", spec[bound])):
                fail("parameter %s: %s needs a number, on an integer or number" % (name, bound))
        if "default" in spec and _problem(name, spec, spec["default"]):
            fail("parameter %s: its default does not fit: %s"
                 % (name, _problem(name, spec, spec["default"])))
        checked[name] = dict(spec, type=kind)
    return checked


def _problem(name, spec, value):
    kind = spec["type"] if "type" in spec else "string"
    if not _type_ok(kind, value):
        return "%s must be %s %s" % (name, "an" if kind[0] in "aeiou" else "a", kind)
    if "enum" in spec and value not in spec["enum"]:
        return "%s must be one of %s" % (name, ", ".join(map(repr, spec["enum"])))
    if "minimum" in spec and value < spec["minimum"]:
        return "%s must be at least %s" % (name, spec["minimum"])
    if "maximum" in spec and value > spec["maximum"]:
        return "%s must be at most %s" % (name, spec["maximum"])
    return None


def validate(declared, given):
    """``given`` checked against ``declared``, with defaults filled in (or ValidationError)."""
    problems = [_unknown(name, declared) for name in given if name not in declared]
    result = {}
    for name, spec in declared.items():
        if name in given:
            problem = _problem(name, spec, given[name])
            if problem:
                problems.append(problem)
            result[name] = given[name]
        elif "default" in spec:
            result[name] = spec["default"]
        elif spec.get("required"):
            problems.append("%s is required" % name)
    if problems:
        raise ValidationError("invalid parameters: " + "; ".join(problems))
    return result


def _unknown(name, declared):
    guess = did_you_mean(name, declared)
    return "unknown parameter %s (%sthis worker takes: %s)" % (
        name, "did you mean %s? " % guess if guess else "", ", ".join(declared) or "none")


def unchecked_note(workers):
    """What a reply says when it ran ``workers`` (names) with parameters they do not check."""
    if len(workers) == 1:
        return ("worker %s declares no parameters, so they are not checked: a misspelt name "
                "reaches the job as it is" % workers[0])
    return ("workers %s declare no parameters, so theirs are not checked: a misspelt name "
            "reaches the job as it is" % ", ".join(workers))


def split_secrets(declared, params):
    """(params with secret values masked, the secret values by name)."""
    secret_names = {name for name, spec in (declared or {}).items() if spec.get("secret")}
    public = {k: (MASK if k in secret_names else v) for k, v in params.items()}
    secrets = {k: v for k, v in params.items() if k in secret_names}
    return public, secrets


def had_secrets(public):
    """Whether a job's public parameters (as ``split_secrets`` left them) stood in for secret
    values: each shows ``MASK``. Never false for a job that had some (a public value that is
    MASK by chance makes it true for one that had none)."""
    return isinstance(public, dict) and MASK in public.values()


def public_declaration(declared):
    """The declaration as the API shows it (defaults of secret parameters hidden)."""
    if declared is None:
        return None
    return {name: ({k: v for k, v in spec.items() if k != "default"} if spec.get("secret")
                   else spec) for name, spec in declared.items()}


def mask_values(secrets):
    """The texts to mask in logs: each secret as text (too short ones would mask noise)."""
    values = set()
    for value in secrets.values():
        text = value if isinstance(value, str) else str(value)
        if len(text) >= MIN_MASKED:
            values.add(text)
    return sorted(values, key=len, reverse=True)  # longest first: no half-masked overlaps


class Masker:
    """Hides a job's secret values wherever they would be written: in a message (``text``) or
    in a block of entries as the spool format escapes it (``block``). The one place that masks:
    the runner masks what the worker logs, the server what reaches the log otherwise (a child
    process's raw output, an entry POSTed by a client)."""

    def __init__(self, values):
        values = tuple(values)  # longest first (``mask_values``)
        # A line's CRLF loses its \r when stored (spool, runner): a secret ending in \r (read
        # from a CRLF file) is masked without it too.
        bare = tuple(value.rstrip("\r") for value in values if value.endswith("\r"))
        extra = [value for value in bare if len(value) >= MIN_MASKED and value not in values]
        self.values = tuple(sorted(values + tuple(extra), key=len, reverse=True)) if extra \
            else values
        # A secret as ``repr`` shows it too (``sys.exit("... %r" % key)``, a KeyError): it
        # differs from the value when the secret holds a quote, a backslash or a control.
        self._texts = self.values + tuple(
            shown for shown in (repr(secret)[1:-1] for secret in self.values)
            if shown not in self.values)
        self._raw = None
        self._escaped = None

    def __bool__(self):
        return bool(self.values)

    def text(self, message):
        for secret in self._texts:
            if secret in message:
                message = message.replace(secret, MASK)
        return message

    def safe_cut(self, data, cut):
        """A cut of raw output ``data`` (bytes) at ``cut`` or before it, such that no secret
        begins before the cut and ends after it: each side is masked apart, so a secret cut in
        two would be in clear. The caller keeps at least the longest secret's length of
        ``data`` after ``cut`` (else what follows is unknown)."""
        if self._raw is None:
            self._raw = [secret.encode("utf-8", "surrogateescape") for secret in self.values]
        moved = True
        while moved and cut > 0:
            moved = False
            for secret in self._raw:
                start = max(0, cut - len(secret) + 1)
                found = data.find(secret, start, cut + len(secret) - 1)
                if 0 <= found < cut:
                    cut, moved = found, True
        return cut

    @property
    def longest(self):
        """Bytes of the longest secret as it can appear in raw output (0 without secrets)."""
        return max((len(s.encode("utf-8", "surrogateescape")) for s in self.values), default=0)

    def block(self, block):
        if self._escaped is None:  # a secret as it looks in an entry line: escaped, in UTF-8
            self._escaped = [(escape(secret).encode("utf-8", "surrogateescape"), MASK.encode())
                             for secret in self.values]
        for secret, mask in self._escaped:
            block = block.replace(secret, mask)
        return block
