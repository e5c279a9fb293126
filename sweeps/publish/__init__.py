"""Where results become visible: a sweep's runs read back from MLflow, judged by
`sweeps.judge`, and written as files under results/, the sweep's MLflow run, the registered
best model and the leaderboard view. Every write to MLflow after a sweep happens here (during a
sweep, `sweeps.run.mlflow_callback` logs the trials). Imports no Ray."""
