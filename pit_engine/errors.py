"""User-facing errors: one line that says what, where, and what to do."""
from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input (a path, a file, a config value).

    The command line prints it as one line and exits with code 2; the GUI shows it in a dialog.
    """

    def __init__(self, what: str, where: str | object = "", todo: str = ""):
        self.what, self.where, self.todo = what, str(where), todo
        super().__init__(self.line())

    def __reduce__(self):  # survives the trip back from a DataLoader worker process intact
        return (UserError, (self.what, self.where, self.todo))

    def line(self) -> str:
        text = f"error: {self.what}"
        if self.where:
            text += f" ({self.where})"
        if self.todo:
            text += f" — {self.todo}"
        return text
