"""`make bench-tracking`: the driver's logging at cluster scale, as rows. A fresh PostgreSQL and
an `mlflow server` on it start on loopback (the compose cluster's stores, not SQLite); the
simulated trials report through the real callback and outbox (bench/tracking_load.py); every
process shares this machine's cores."""

import os
import tempfile
from pathlib import Path

from bench.rows import Row
from bench.servers import TrackingServer, postgres, postmaster_pid
from bench.tracking_load import LoadRun, count_rows

CLUSTER_TRIALS = 4000  # 1,000 GPUs at 4 trials each (bottleneck-gpu)
REPORT_EVERY_S = 60.0  # each trial reports an epoch once a minute
DEFAULTS = {
    "trials": 400,  # trial runs opened; the cluster's results are spread over them
    "rate": CLUSTER_TRIALS / REPORT_EVERY_S,  # results/s: 4,000 trials once a minute
    "points": 100,  # per-step losses per result: 1,000 steps a minute at log_every 10
    "steady_s": 120.0,
    "pause_s": 60.0,
    "workers": 4,  # the server's workers, as docker/mlflow-server.sh starts it
}


def checked_counts(backend_uri: str, figures: dict) -> dict:
    """Every result's metrics and per-step losses in the database, or the run fails."""
    rows = count_rows(backend_uri, figures["sweep_id"])
    sent, points = figures["sent"], figures["points_per_result"]
    expected = {"train_loss": sent, "train_loss_step": sent * points}
    lost = {name: want - rows.get(name, 0) for name, want in expected.items()}
    if any(lost.values()):
        raise SystemExit(f"bench.tracking: results lost in the store: {lost} of {expected}")
    print(f"bench.tracking: all {sent} results are in the database, every point too")
    return {"lost": 0}


def load_rows(figures: dict) -> list[Row]:
    needed, offered = figures["needed_per_s"], figures["offered_per_s"]
    cpu = {k: v for k, v in figures.items() if k.endswith("_cpu_ms_per_result")}
    service_ms = sum(v for k, v in cpu.items() if not k.startswith("driver"))
    lags = {
        k: figures[k] for k in ("offered_per_s", "delivered_per_s", "lag_median_s", "lag_max_s")
    }
    return [
        Row(
            f"logging: ceiling / needed results/s ({CLUSTER_TRIALS:,} trials once a minute)",
            figures["ceiling_per_s"] / needed,
            2.0,
            True,
            f"{needed:.1f} results/s of {figures['points_per_result']} per-step losses each "
            "(2: a backlog clears as fast as it built up); driver, server and PostgreSQL on "
            "the same cores",
            {
                "ceiling_per_s": figures["ceiling_per_s"],
                "service_cores_at_needed": service_ms * needed / 1000,
                **cpu,
            },
        ),
        Row(
            f"logging: delivered / offered at {offered:.1f} results/s",
            figures["delivered_per_s"] / offered,
            0.98,
            True,
            "the rate offered: the needed one, or a third of the ceiling where that is lower",
            lags,
        ),
        Row(
            f"logging: catch-up after a {figures['pause_s']:g} s server pause / the pause",
            figures["catch_up_s"] / figures["pause_s"],
            1.0,
            False,
            "the pause (SIGSTOP of the server and its workers) at the offered rate",
            {
                k: figures[k]
                for k in ("backlog_at_resume", "lag_max_paused_s", "catch_up_s", "lost")
            },
        ),
        Row(
            f"sweep start: opening {CLUSTER_TRIALS:,} trial runs / a minute",
            figures["open_s_per_trial"] * CLUSTER_TRIALS / REPORT_EVERY_S,
            1.0,
            False,
            "one reporting interval (every run open before the first results arrive)",
            {"open_s_per_trial": figures["open_s_per_trial"], "opened": figures["trials"]},
        ),
        Row(
            "driver: its process's share of one core at the needed rate",
            figures["driver_cpu_ms_per_result"] * needed / 1000,
            0.25,
            False,
            f"one core; CPU per result measured at {offered:.1f} results/s (the callback, the "
            "outbox's delivery threads, MLflow's client, and this benchmark's own trials)",
            {k: figures[k] for k in ("callback_core_share", "driver_cpu_ms_per_result")},
        ),
        Row(
            "driver: memory after / before the steady phase",
            figures["rss_end_mib"] / figures["rss_start_mib"],
            1.05,
            False,
            f"the driver's memory once the runs are open ({figures['results_in_steady']:,} "
            "results logged in between)",
            {k: figures[k] for k in ("rss_start_mib", "rss_end_mib", "results_in_steady")},
        ),
    ]


def tracking_rows(options: dict) -> list[Row]:
    """PostgreSQL, the server on it, the load through the driver's real callback; rows."""
    options = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    with tempfile.TemporaryDirectory(prefix="ovat-tracking-") as scratch:
        folder = Path(scratch)
        os.chmod(folder, 0o755)  # PostgreSQL's own user writes below it
        with postgres(folder / "pg") as backend_uri:
            server = TrackingServer(folder, backend_uri, options["workers"])
            server.start()
            print(f"bench.tracking: mlflow server on {server.uri}, PostgreSQL behind it")
            previous = os.environ.get("MLFLOW_TRACKING_URI")
            os.environ["MLFLOW_TRACKING_URI"] = server.uri
            try:
                run = LoadRun(
                    folder / "results",
                    options["trials"],
                    options["rate"],
                    options["points"],
                    options["steady_s"],
                    pause=server.pause,
                    resume=server.resume,
                    pause_s=options["pause_s"],
                    pids={
                        "server": server.process.pid,
                        "database": postmaster_pid(folder / "pg"),
                    },
                )
                figures = run.run()
                figures |= checked_counts(backend_uri, figures)
            finally:
                server.stop()
                if previous is None:
                    os.environ.pop("MLFLOW_TRACKING_URI", None)
                else:
                    os.environ["MLFLOW_TRACKING_URI"] = previous
    return load_rows(figures)
