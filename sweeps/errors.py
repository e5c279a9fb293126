"""Sweep outcomes the command line reports as one line, importable without Ray."""


class SweepInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM: Tune saved its state; the message says how to resume (exit 130)."""


class ResumeError(LookupError):
    """Nothing to resume: no such sweep, or its Tune state is gone."""
