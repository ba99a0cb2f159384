class ApplicationError(Exception):
    """An error a user or a calling system can act on; never a 500.

    `fields` maps a field name (or row/column) to a list of messages.
    """

    def __init__(self, message: str, *, code: str = "invalid", fields: dict | None = None,
                 status: int = 400):
        super().__init__(message)
        self.message = str(message)
        self.code = code
        self.fields = fields or {}
        self.status = status
