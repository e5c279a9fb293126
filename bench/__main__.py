"""`python -m bench <name> ...`: run one benchmark, print its rows, write results/bench/."""

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench import page
from bench import rows as output
from bench.data_loading import PrepareBench, data_rows, prepare_row
from bench.scale import VALUES, scale_rows
from bench.scheduling import run_load
from bench.startup import startup_rows
from bench.streaming import streaming_rows
from bench.training import training_rows
from trainers.paths import results_dir


def load(args: argparse.Namespace) -> list[output.Row]:
    rows, counted = run_load(args.trials, args.cpus)
    if counted != args.trials:
        raise SystemExit(f"bench: the ranking counted {counted} of {args.trials} trials")
    print(f"bench: all {counted} trials are in the ranking")
    return rows


def everything(args: argparse.Namespace) -> list[output.Row]:
    """`make bench`: every row in one run (about 8 minutes here)."""
    import ray

    from sweeps.run.cluster import ensure_ray

    rows = data_rows(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        decoding = PrepareBench(Path(tmp), args.images // 3)
        decoding.images_per_s("warm-up-in-process", px=32)  # as the Ray run gets one
        alone, _ = decoding.images_per_s("in-process")  # before Ray is up
        ensure_ray()  # one Ray instance for the preparation and the sweeps below
        rows.append(prepare_row(decoding, alone, ray.cluster_resources()["CPU"]))
    rows += training_rows()
    rows += streaming_rows()
    rows += startup_rows(str(store() / "tune"))
    packing, counted = run_load(args.trials, 1.0)
    if counted != args.trials:
        raise SystemExit(f"bench: the ranking counted {counted} of {args.trials} trials")
    return rows + packing


def streaming(args: argparse.Namespace) -> list[output.Row]:
    from sweeps.run.cluster import ensure_ray

    ensure_ray()
    return streaming_rows()


def startup(args: argparse.Namespace) -> list[output.Row]:
    from sweeps.run.cluster import ensure_ray

    ensure_ray()
    return startup_rows(str(store() / "tune"))


def store() -> Path:
    """results/bench: the benchmarks' own MLflow store and Tune storage."""
    return results_dir() / "bench"


def scale(args: argparse.Namespace) -> list[output.Row]:
    """In a fresh store of its own (a rerun would pool into the last run's sweeps), deleted
    after; with Chromium here, that store served by `mlflow server` for the leaderboard rows."""
    from bench.browser import CHROMIUM
    from bench.servers import TrackingServer

    with tempfile.TemporaryDirectory(dir=store()) as scratch:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch}/mlflow.db"
        if CHROMIUM is None:
            print("bench: no chromium here, so no leaderboard rows (apt-get install chromium)")
            return scale_rows(args.trials)
        server = TrackingServer(Path(scratch), os.environ["MLFLOW_TRACKING_URI"], workers=1)
        server.start()
        os.environ["OVAT_UI_URL"] = server.uri  # where the published views point
        try:
            return scale_rows(args.trials, browser=True)
        finally:
            server.stop()


def nodes(args: argparse.Namespace) -> list[output.Row]:
    from bench.nodes import run_nodes

    return run_nodes(args.nodes, args.trials or 3 * args.nodes)


def tracking(args: argparse.Namespace) -> list[output.Row]:
    from bench.tracking_scale import tracking_rows

    return tracking_rows(vars(args))


BENCHMARKS = {
    "load": load,
    "all": everything,
    "streaming": streaming,
    "startup": startup,
    "scale": scale,
    "tracking": tracking,
    "nodes": nodes,
}


MAX_NODES = 16  # each node is a raylet and its workers on this machine: memory bounds it


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="name", required=True)
    p = sub.add_parser("load", help="a sweep of many tiny trials: packing and per-trial overhead")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--cpus", type=float, default=0.5, help="resources.cpus_per_worker")
    sub.add_parser("streaming", help="the streamed train split against the in-memory one")
    p = sub.add_parser("scale", help="make rank, pooled ranks and make diff over many trial runs")
    p.add_argument("--trials", type=int, default=10_000, help="trial runs in the large sweep")
    p = sub.add_parser("tracking", help="logging of many reporting trials into PostgreSQL")
    p.add_argument("--trials", type=int, help="trial runs the results go to (400)")
    p.add_argument("--rate", type=float, help="results/s needed (66.7: 4,000 trials, 1/min)")
    p.add_argument("--points", type=int, help="per-step losses per result (100)")
    p.add_argument("--steady-s", type=float, help="seconds measured at the steady rate (120)")
    p.add_argument("--pause-s", type=float, help="seconds the server is paused (60)")
    p.add_argument("--workers", type=int, help="the tracking server's workers (4)")
    p = sub.add_parser("nodes", help="tiny trials packed over a many-node Ray cluster on loopback")
    p.add_argument("--nodes", type=int, default=8, help="worker nodes, one fake GPU each (2-16)")
    p.add_argument("--trials", type=int, help="trials in the packed sweep (3 per node)")
    sub.add_parser("startup", help="the default sweep at one epoch against a plain Tune script")
    p = sub.add_parser("all", help="every benchmark row in one run (make bench)")
    p.add_argument("--trials", type=int, default=8, help="1-CPU trials for the packing rows")
    p.add_argument("--images", type=int, default=3000, help="JPEGs for the data row")
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            parser.error(f"{args.name}: --{name.replace('_', '-')} must be > 0, got {value}")
    if args.name == "scale" and args.trials < 10 * VALUES:  # its small sweep: one seed a value
        parser.error(f"scale: --trials must be >= {10 * VALUES}, got {args.trials}")
    if args.name == "nodes" and not 2 <= args.nodes <= MAX_NODES:
        parser.error(f"nodes: --nodes must be 2..{MAX_NODES}, got {args.nodes}")
    store().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{store()}/mlflow.db")  # not the user's
    started = time.monotonic()
    rows = BENCHMARKS[args.name](args)
    paths = output.write(rows, args.name)
    print(output.markdown(rows))
    print(f"bench: wrote {paths['json']} and {paths['markdown']}")
    if args.name == "all":
        print(f"bench: wrote {page.write(rows, time.monotonic() - started)}")


if __name__ == "__main__":
    main()
