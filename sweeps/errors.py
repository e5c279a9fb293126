"""Sweep outcomes the command line reports as one line, importable without Ray."""


class SweepInterrupted(RuntimeError):
    """Ctrl-C or SIGTERM: Tune saved its state; the message says how to resume (exit 130)."""


class ResumeError(LookupError):
    """Nothing to resume: no such sweep, or its Tune state is gone."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownSweep(LookupError):
    """No sweep by that id in the tracking store."""

    def __str__(self) -> str:  # a LookupError's str() quotes its message, as a KeyError does
        return str(self.args[0]) if self.args else ""


class ResourceError(RuntimeError):
    """A trial can never run on this cluster (GPUs, CPUs, object-store memory): the message
    names what is missing, and the sweep stops before anything is written."""
