"""What can go wrong with a request, as exceptions that carry a message id and its values.

The app turns each into an HTTP problem (``application/problem+json`` for the API, the page
itself with the message for a form), translated into the user's language.

>>> str(Conflict("task %(task)s is claimed by %(who)s", task="T-1", who="wang"))
'task T-1 is claimed by wang'
"""

from __future__ import annotations


class DeskError(Exception):
    status = 400
    headers: dict[str, str] | None = None

    def __init__(self, msg: str, **params: object):
        self.msg, self.params = msg, params
        super().__init__(msg % params if params else msg)


class Unauthorized(DeskError):
    status = 401

    def __init__(self, msg: str, **params: object):
        super().__init__(msg, **params)
        self.headers = {"WWW-Authenticate": 'Basic realm="zt-desk"'}


class Forbidden(DeskError):
    status = 403


class NotFound(DeskError, LookupError):
    status = 404


class Conflict(DeskError):
    status = 409


class Invalid(DeskError, ValueError):
    status = 422


class TooMany(DeskError):
    status = 429

    def __init__(self, msg: str, retry_after_s: int = 60, **params: object):
        super().__init__(msg, **params)
        self.headers = {"Retry-After": str(max(1, int(retry_after_s)))}
