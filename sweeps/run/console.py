"""What a user sees: ovat's own lines on the terminal, every library's chatter in a log file.

At the default verbosity, Ray's, Tune's, MLflow's and alembic's log records, Python warnings and
the raylet's messages to the driver go to `results/<sweep id>/ovat.log` (the command says where);
`--verbose 1` (or more) leaves them all on the terminal as the libraries print them.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


QUIET_ENV = {
    # Tune's newer reporter prints an experiment box and a TensorBoard hint even at verbose=0;
    # its classic reporter prints nothing at verbose=0.
    "RAY_AIR_NEW_OUTPUT": "0",
    # MLflow prints "View run ... at <url>" to stdout for every run ended on a tracking server,
    # with the server's address as the code sees it (a container's service name); ovat prints
    # the one link a person needs, the leaderboard.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


@contextlib.contextmanager
def quiet(log_path: Path) -> Iterator[Path]:
    """Send every library's logging, Python warnings and Ray's driver messages to `log_path`
    while the block runs; everything is as it was afterwards (tests call the CLI in-process).

    Ray and MLflow attach their own terminal handlers to their loggers when imported, so they
    are imported first and their handlers set aside: Ray Data, Train and Tune too, which a sweep
    imports inside the block (a handler added then would print on the terminal)."""
    import mlflow  # noqa: F401 (configures its logger on import)
    import ray
    import ray._private.worker as ray_worker
    import ray.data  # these three add their loggers' handlers on import: set aside below
    import ray.train
    import ray.tune  # noqa: F401

    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter(FORMAT))
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    ]
    saved = [(lg, list(lg.handlers), lg.propagate, lg.level) for lg in loggers]
    saved_env = {name: os.environ.get(name) for name in QUIET_ENV}
    saved_ray = ray_worker._worker_logs_enabled
    os.environ.update(QUIET_ENV)
    # The raylet's notes to the driver (e.g. "8 PYTHON worker processes have been started")
    # are printed to the driver's stdout unless this is off; Ray 2.60 has no public switch.
    ray_worker._worker_logs_enabled = False
    for logger in loggers[1:]:
        for existing in list(logger.handlers):
            if not isinstance(existing, logging.FileHandler):
                logger.removeHandler(existing)
        logger.propagate = True
    root = loggers[0]
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield log_path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        for logger, handlers, propagate, level in saved:
            logger.handlers[:] = handlers
            logger.propagate, logger.level = propagate, level
        ray_worker._worker_logs_enabled = saved_ray
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
