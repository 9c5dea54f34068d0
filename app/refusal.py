"""The one way an action says no: ``Refused`` carries the reason in words the user reads. A
service raises it before changing anything (or the caller rolls back), so nothing half-done stays."""

from __future__ import annotations


class Refused(Exception):
    """An action that cannot be done, with the reason in words the user reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
