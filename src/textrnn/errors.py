"""The one exception type textrnn raises for problems a user can fix (bad paths, bad rows, bad flags).

The CLI prints these as a single line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class TextrnnError(Exception):
    """A problem with the user's input or environment, with a message that says what to do about it."""


class DataError(TextrnnError):
    """Input data that cannot be read: a missing file, a malformed row, an unusable label."""
