"""The one exception type the CLI turns into a clear message and a non-zero exit."""


class PointSDError(Exception):
    """A user-facing error: bad input file, bad parameter, wrong checkpoint.

    The message must name the offending file or key; the CLI prints it on one line and exits 2.
    """
