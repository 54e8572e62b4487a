"""The one exception type the CLI turns into a clear one-line error."""


class QuicctlError(Exception):
    """An error a user can act on: says what failed, on what, and the likely cause.

    The CLI prints ``quicctl: <message>`` to stderr and exits 1 (traceback only with --debug).
    """
