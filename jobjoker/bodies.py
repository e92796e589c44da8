"""The keys of a JSON object a request sends: the one rule for keys it does not take.

Contract: ``check_keys(value, allowed, subject)`` raises ``BadRequest`` naming every key of the
object ``value`` that is not in ``allowed``, each with a "did you mean" when an allowed key is
close (``did_you_mean``, by ``difflib``), and saying which keys ``subject`` takes; a misspelt
key must never be taken for an absent one and quietly get its default. A ``value`` that is not
an object is left to its reader, which says what shape it wants. Every handler that reads a JSON
body declares its keys (``APIHandler.json_body``); nested objects with fixed keys (a job of a
batch) are checked with the same function. Imports nothing of ours but the errors.
"""
import difflib

from jobjoker.errors import BadRequest

MAX_KEYS_NAMED = 10  # unknown keys named in one message; the rest are counted
MAX_KEY_SHOWN = 40  # characters of an unknown key quoted back


def did_you_mean(word, choices):
    """The one of ``choices`` closest to ``word``, if one is close enough to be a typo."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _shown(key):
    return repr(key if len(key) <= MAX_KEY_SHOWN else key[:MAX_KEY_SHOWN] + "...")


def _listed(words):
    words = list(words)
    return words[0] if len(words) == 1 else "%s and %s" % (", ".join(words[:-1]), words[-1])


def check_keys(value, allowed, subject="the body", hint="", noun="key"):
    """Raise ``BadRequest`` if the object ``value`` has a key outside ``allowed`` (``hint``
    is added to the message; ``noun`` names what a key is, "query parameter" for a URL's);
    anything that is not an object passes."""
    if not isinstance(value, dict):
        return
    unknown = [key for key in value if key not in allowed]
    if not unknown:
        return
    named = []
    for key in unknown[:MAX_KEYS_NAMED]:
        guess = did_you_mean(key, allowed)
        named.append(_shown(key) + (" (did you mean %r?)" % guess if guess else ""))
    if len(unknown) > MAX_KEYS_NAMED:
        named.append("%d more" % (len(unknown) - MAX_KEYS_NAMED))
    raise BadRequest("unknown %s%s %s; %s takes %s%s" % (
        noun, "s" if len(unknown) > 1 else "", _listed(named), subject,
        _listed(allowed) if allowed else "no %ss" % noun, hint))
