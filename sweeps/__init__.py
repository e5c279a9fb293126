"""Sweeps: an ablation file in, a ranking out. One sub-package per concern, each importing only
the packages listed before it:

- `judge`: the statistics, the racing rule of SEEDS=auto and the ranking: pure functions over
  numbers and rows. No Ray, no MLflow, no files (tests/test_imports.py enforces it).
- `define`: ablation files and the plan they expand to (trials with parsed configs, and the
  seed rule of a SEEDS=auto sweep). No Ray, no MLflow.
- `publish`: a sweep read back from MLflow, judged, and written out: files, the sweep's MLflow
  run, the model registry, the leaderboard view, `make diff`. No Ray.
- `run`: a plan run on Ray Tune: the cluster, the data inputs, the Tuner and its seed racer, the
  MLflow callback and its outbox, the progress line, the watchdog, the placement probe.
  Publishes at the end.
- `cli`: the `ovat` command, one module per group of commands.
"""
