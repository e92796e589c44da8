"""Domain errors: the only exceptions the model, worker and process layers raise on purpose.

Contract: this module imports nothing of ours and knows nothing of HTTP. The web layer maps each
class to a status code in one place (``handlers/base.py``); every message is written for the
person who has to fix the request, so it says what was wrong and what would be right.
"""


class JobJokerError(Exception):
    """Base of every domain error; ``message`` is safe to show to a client."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class BadRequest(JobJokerError):
    """The request is malformed (bad JSON, a missing field, an unknown word)."""


class Unauthorized(JobJokerError):
    """No valid credentials were given."""


class Forbidden(JobJokerError):
    """Valid credentials, but not allowed to do this."""


class NotFound(JobJokerError):
    """The job, worker or user named does not exist."""


class MethodNotAllowed(JobJokerError):
    """The resource exists but this method may not change it (the server owns it)."""


class Conflict(JobJokerError):
    """The request is valid but the current state forbids it (deleting an active job, say)."""


class InvalidTransition(Conflict):
    """A job status change the state machine does not allow."""


class TooLarge(JobJokerError):
    """A body, parameter set or worker file exceeds its configured limit."""


class ValidationError(JobJokerError):
    """Well-formed but invalid content: worker code that does not parse, bad parameters."""

    def __init__(self, message, line=None):
        super().__init__(message)
        self.line = line


class TooManyRequests(JobJokerError):
    """Throttled (failed logins): try again after ``retry_after`` seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(JobJokerError):
    """A dependency (database, supervisor) is away, or the server is busy; the request may
    succeed later (after ``retry_after`` seconds, when given)."""

    def __init__(self, message, retry_after=None):
        super().__init__(message)
        self.retry_after = retry_after


class StartupError(JobJokerError):
    """The server cannot start (data dir locked, database unreachable); printed, then exit."""
