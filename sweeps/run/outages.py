"""What counts as a tracking outage (a write that may succeed later unchanged), and waiting one
out: the outbox retries its queue through outages, and the ranking and the registry, which
write MLflow themselves after the outbox drained, go through `through_outages`."""

import sys
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from mlflow.exceptions import MlflowException, RestException

from sweeps.run.waits import waits
from trainers import tracking

TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
NETWORK_ERRORS = (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout)


def is_outage(error: Exception) -> bool:
    """Could this write succeed later unchanged? Connection failures, timeouts and 5xx answers
    can; a request the store answered and refused (4xx, a bad value) never will, and neither
    will a local file that is missing or a full disk (OSErrors that are not the network)."""
    if isinstance(error, RestException):
        return (error.get_http_status_code() or 500) >= 500
    if isinstance(error, MlflowException):
        return error.error_code in TRANSIENT_CODES
    return isinstance(error, NETWORK_ERRORS)


T = TypeVar("T")


def through_outages(action: Callable[[], T], wait_s: float | None = None, poll_s=5.0) -> T:
    """`action()`, again while it fails for an outage, up to OVAT_TRACKING_WAIT_S: the ranking
    and the registry write MLflow themselves after the outbox drained (a server restarted
    then once failed a sweep whose trials had all finished)."""
    deadline = time.monotonic() + (waits().tracking_wait_s if wait_s is None else wait_s)
    said = False
    while True:
        try:
            return action()
        except (MlflowException, OSError) as error:
            if not is_outage(error) or time.monotonic() >= deadline:
                raise
            if not said:
                reason = str(error).splitlines()[0][:200]
                say(f"tracking store {tracking.tracking_uri()} unreachable ({reason}); waiting")
                said = True
            time.sleep(poll_s)


def say(text: str) -> None:
    print(f"ovat: {text}", file=sys.stderr, flush=True)
