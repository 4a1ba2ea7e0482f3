"""The one error type of the model layer: what went wrong, in words for the member, and the HTTP status
that fits. A route catches `DomainError` once and re-renders its form with `error.message` next to
`error.field`; nothing in here knows about HTTP beyond the number."""

from __future__ import annotations

from db.i18n import _


class DomainError(Exception):
    message: str = _("That didn't work. Please try again.")
    status: int = 422
    field: str | None = None

    def __init__(self, message: str | None = None, *, field: str | None = None, status: int | None = None) -> None:
        if message is not None:
            self.message = message
        if field is not None:
            self.field = field
        if status is not None:
            self.status = status
        super().__init__(self.message)


class InvalidInput(DomainError):
    """A field's value is refused; `field` names it so the form can tie the message to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class IncorrectCode(DomainError):
    """Wrong, malformed, reused or uncheckable code: one answer for all, so none of them leaks which."""

    message = _("Incorrect code. Check your authenticator app and try again.")
    field = "code"


class IncorrectBackupCode(IncorrectCode):
    message = _("Incorrect backup code.")
    field = "backup_code"


class IncorrectPassword(DomainError):
    message = _("Incorrect password.")
    field = "current_password"


class InvalidCredentials(DomainError):
    """Unknown email or wrong password: one error, so the two can't be told apart."""

    message = _("Incorrect email or password.")


class NotFound(DomainError):
    message = _("There is nothing at this address.")
    status = 404
