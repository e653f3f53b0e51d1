"""Typed domain errors. Each message is meant to be read by a user and acted on."""

from alluse.domain.money import format_usd


class AlluseError(Exception):
    """Base of every error a user can cause; entrypoints print it as one line."""

    code = "error"


class InvalidInput(AlluseError):
    code = "invalid-input"


class InvalidNumber(InvalidInput):
    """A typed number not in its field's accepted form (domain/parsing.py); names both."""

    code = "invalid-number"

    def __init__(self, field: str, form: str, problem: str):
        self.field = field
        self.form = form
        self.problem = problem
        super().__init__(f"{field}: {problem}; expected {form}")


class NotFound(AlluseError):
    code = "not-found"


class Conflict(AlluseError):
    """The request contradicts existing state (a mapped brokerage account, a reused key)."""

    code = "conflict"


class RuleViolation(AlluseError):
    """An intent the method forbids (e.g. any Com-Acc withdrawal)."""

    code = "rule-violation"


class BufferShortfall(RuleViolation):
    """An intent would leave deployable cash negative."""

    code = "buffer-shortfall"

    def __init__(self, account_label: str, buffer_cents: int, shortfall_cents: int, action: str):
        self.account_label = account_label
        self.buffer_cents = buffer_cents
        self.shortfall_cents = shortfall_cents
        super().__init__(
            f"{action} refused: {account_label} would fall below its cash buffer of "
            f"{format_usd(buffer_cents)} (shortfall {format_usd(shortfall_cents)}); "
            "an admin may override with a written reason"
        )


class IntegrityFailure(AlluseError):
    """verify found the stored state disagreeing with the journal."""

    code = "integrity-failure"


class PermissionDenied(AlluseError):
    """The database role in use may not do this (e.g. a whole-database check under row-level security)."""

    code = "permission-denied"


class Unauthenticated(AlluseError):
    """No valid credentials: a missing, expired or revoked token or key, or a wrong password."""

    code = "unauthenticated"


class Forbidden(AlluseError):
    """Authenticated, but the role held on this portfolio does not allow the action."""

    code = "forbidden"


class TooManyAttempts(AlluseError):
    """Login rate limit reached; `retry_after` seconds until the next attempt is accepted."""

    code = "rate-limited"

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)
