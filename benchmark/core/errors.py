"""User-facing errors: each one is printed as a single line and exits with status 2."""


class BenchmarkError(Exception):
    """A mistake in what the user asked for or supplied (data, options, config)."""


class DataError(BenchmarkError):
    """A data file that cannot be read as Few-NERD; the message names the file and line."""


class ConfigError(BenchmarkError):
    """An unknown or unparsable setting."""


class NotFittedError(RuntimeError):
    """`predict` was called before `fit` (a programming error, not a user error)."""


class ProtocolViolation(RuntimeError):
    """A method returned predictions its protocol does not allow (a bug in the method)."""
