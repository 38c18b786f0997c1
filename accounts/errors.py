"""Domain errors raised by services; the API and pages turn them into 4xx answers."""


class ConflictError(Exception):
    """The action makes no sense in the object's current state (answered as 409)."""

    def __init__(self, message: str, field: str = "detail"):
        super().__init__(message)
        self.message = message
        self.field = field
