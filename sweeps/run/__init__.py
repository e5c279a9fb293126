"""Running a plan on Ray: the cluster and what it holds, the trials' data inputs, the Tune
Tuner (one TorchTrainer per trial), the MLflow callback with its outbox and courier thread, the
progress line, the watchdog that ends trials nothing runs (and removes dead controllers'
placement groups), Ctrl-C handling and the placement probe."""
