"""User-facing errors: one line that says what, where, and what to do."""
from __future__ import annotations

import re


_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(32), 127)}


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
        # one line, whatever a name in it holds (a config key "\n", a file name with a tab)
        return text.translate(_ESCAPES)


def out_of_memory(exc: BaseException, where: str = "GPU") -> UserError:
    """CUDA's out-of-memory error as one line with the ways out."""
    tried = re.search(r"Tried to allocate ([\d.]+ \w+)", str(exc))
    return UserError("out of GPU memory" + (f" allocating {tried.group(1)}" if tried else ""), where,
                     "use a smaller data.crop or data.*_size, train.amp = \"bf16\", or a smaller train.batch_size")
