"""Running a plan on Ray: the cluster and what it holds, the trials' data inputs, the Tune
Tuner (one TorchTrainer per trial), the MLflow callback with its outbox, the progress line, Ctrl-C
handling and the placement probe."""
