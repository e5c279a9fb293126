"""Ctrl-C and SIGTERM during a sweep: Tune's graceful stop, remembered as an interruption."""

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

# Tune's own Ctrl-C handler would stop the run without telling us; ours (below) does the same
# through Tune's SIGUSR1 handler and remembers that the sweep was stopped.
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and a scheduler's or `kill`'s stop


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C and SIGTERM take Tune's graceful path (state saved, running trials stopped,
    `fit` returns) and set the event: a trial stopped that way must not count as finished or
    failed. A second Ctrl-C during the shutdown is a KeyboardInterrupt."""
    stopped = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopped
        return

    def stop(signum, frame):
        if stopped.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stopped.set()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield stopped
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
