"""The refusal every dialect shares: a request refused in no service's words yet.

Shared parts (stored uploads) raise ``Refusal``; the app answers it in the envelope of the
dialect whose route was called. A dialect's own error (the Videos API's ``ApiError``) is a
``Refusal`` that already knows its words.
"""

from __future__ import annotations


class Refusal(Exception):
    """A refused request: HTTP status, a message for people, the field it names, a code."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
