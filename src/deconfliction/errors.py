"""Every error the service raises on purpose, in one tree.

    DeconflictionError                 status  code
    ├── InvalidInput                   422     invalid_input (or a narrower code)
    │   ├── InvalidPosition            422     invalid_position
    │   └── TooLarge                   413     too_large
    ├── Unauthenticated                401     unauthenticated
    ├── Forbidden                      403     forbidden
    ├── NotFound                       404     not_found
    ├── AlreadyExists                  409     already_exists
    ├── OutOfOrder                     409     out_of_order
    ├── InvalidState                   409     invalid_state
    ├── StalePicture                   409     stale_picture
    ├── RateLimited                    429     rate_limited
    ├── Busy                           503     busy
    ├── Behind                         503     behind
    └── StoreError                     503     store_unavailable

Each error carries the HTTP status it maps to, a stable machine-readable ``code``, a
message that says what is wrong and what is allowed, and the ``field`` it concerns (a
dotted path such as ``window.end`` or ``position``). The HTTP layer renders all of them
in one shape: ``{"error": {"code", "message", "field"}}``; some errors add details to it
(a stale picture names what changed and gives a fresh key). Refusals that pass with
time (:class:`RetryLater`) carry ``retry_after_s``, sent as HTTP's ``Retry-After`` too.

A conflict found by a check is *not* an error: it is a finding in the check's answer.
"""

from __future__ import annotations

from typing import Any


class DeconflictionError(Exception):
    """Base of every error the service raises on purpose."""

    status = 500
    code = "internal"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        """The error as the body every outlet (HTTP, replay, CLI) shows."""
        return {"code": self.code, "message": self.message, "field": self.field, **self.details}

    def at(self, prefix: str) -> DeconflictionError:
        """Re-anchor the error's field under ``prefix`` (``reports.3`` + ``position``)."""
        self.field = f"{prefix}.{self.field}" if self.field else prefix
        return self


class InvalidInput(DeconflictionError):
    """A request was refused because a value is malformed or out of range; nothing changed."""

    status = 422
    code = "invalid_input"


class InvalidPosition(InvalidInput):
    """A position string could not be read unambiguously as one place on Earth."""

    code = "invalid_position"


class TooLarge(InvalidInput):
    """A request body larger than the service takes (``max_body_bytes``); nothing was read past the limit."""

    status = 413
    code = "too_large"


class Unauthenticated(DeconflictionError):
    """No token, or a token the service does not know."""

    status = 401
    code = "unauthenticated"


class Forbidden(DeconflictionError):
    """The token is valid but its role or party may not do this."""

    status = 403
    code = "forbidden"


class NotFound(DeconflictionError):
    """The named object does not exist (or the caller may not know that it does)."""

    status = 404
    code = "not_found"


class AlreadyExists(DeconflictionError):
    """An object with that id exists already."""

    status = 409
    code = "already_exists"


class OutOfOrder(DeconflictionError):
    """A report older than the one the picture already holds for that asset."""

    status = 409
    code = "out_of_order"


class InvalidState(DeconflictionError):
    """The activity is not in a state that allows this step (activating an objected one, answering a cancelled one)."""

    status = 409
    code = "invalid_state"


class StalePicture(DeconflictionError):
    """The picture key presented is missing, does not cover the area, or something there changed since.

    ``details`` name the changes the caller may see (hidden ones do not make a key stale) and give a fresh key.
    """

    status = 409
    code = "stale_picture"


class RetryLater(DeconflictionError):
    """A refusal that passes with time; ``retry_after_s`` (also in the body) says when to ask again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, details={"retry_after_s": round(retry_after_s, 1)})
        self.retry_after_s = retry_after_s


class RateLimited(RetryLater):
    """A party has used up its budget (of checks, of private cross-checks) for now."""

    status = 429
    code = "rate_limited"


class Busy(RetryLater):
    """The service is doing as many of these at once as it may; try again in a moment."""

    status = 503
    code = "busy"

    def __init__(self, message: str, retry_after_s: float = 2.0) -> None:
        super().__init__(message, retry_after_s)


class Behind(RetryLater):
    """Another node on the same database wrote first; this node is catching up. Nothing was written: ask again."""

    status = 503
    code = "behind"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message, retry_after_s)


class StoreError(DeconflictionError):
    """The store could not durably take or give data; the request changed nothing."""

    status = 503
    code = "store_unavailable"
