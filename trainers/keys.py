"""Every name a trial's worker reports and the sweep's driver reads, and every MLflow tag ovat
sets: spelled once, in a module that imports nothing, so the driver's callbacks and the ranking
read them without importing torch.
"""

TAG = "ovat."  # prefix of every tag ovat sets
PLACEMENT = "placement."  # prefix of the tags that say where a trial ran
HARDWARE_KIND = "placement.hardware_kind"  # one line: the kind that can repeat it bit for bit

# What a worker reports each epoch (metrics are numbers; `ovat.*` and `placement.*` strings
# become tags of the trial's run).
PREVIEW_FILE = "reconstructions.png"  # a trial's picture, in its checkpoint folder
EPOCH = "epoch"
REPORTED_AT = "reported_at_ms"  # when the worker measured the epoch: its MLflow timestamp
TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
TEST_LOSS = "test_loss"
STEP_METRICS = "step_metrics"  # {"train_loss_step": [[global step, value], ...]}
STEP_LOSS = "train_loss_step"
DIVERGED = "ovat.diverged"  # the reason a trial stopped on a non-finite loss
UNTRAINED = "ovat.untrained"  # trainable tensors that never got a gradient, comma-joined
FROZEN_CHANGED = "ovat.frozen_changed"
FINGERPRINT = "ovat.fingerprint"  # a hash of the architecture (module types, shapes)
WEIGHTS_HASH = "ovat.weights_hash"  # a hash of the final weights' bytes
PARAMS_TOTAL = "params_total"
PARAMS_BOTTLENECK = "params_bottleneck"
IMAGES_PER_S = "train_images_per_s"
# A restored worker group's re-reported last epoch: the checkpoint it was restored from (a trial
# restarted after its final checkpoint reports no new one, and its run must still log one).
RESTORED_CHECKPOINT = "restored_checkpoint_path"

# Tags of sweep, trial and follow-up runs.
ROLE = "ovat.role"  # sweep, value, trial, eval, transplant, finetune
SWEEP_ID = "ovat.sweep_id"
TRIAL_KEY = "ovat.trial_key"  # value/s<seed>[/r<repeat>]: finds a trial's run on resume
ABLATION = "ovat.ablation"
VARY = "ovat.vary"
VALUE = "ovat.value"
SEED = "ovat.seed"
REPEAT = "ovat.repeat"
BASELINE = "ovat.baseline"
TRIALS = "ovat.trials"  # the most trials the sweep may run
SEED_RULE = "ovat.seed_rule"  # SEEDS=auto: the race's rule as JSON (sweeps.judge.racing.Rule)
TUNE_TRIAL_ID = "ovat.tune_trial_id"
STATUS = "ovat.status"  # running, interrupted, ended, failed
ERROR = "ovat.error"  # why a run failed
RETRIED = "ovat.retried"  # why Tune reran a trial from its last checkpoint (its last error)
RESUMED = "ovat.resumed"
FAILED_TRIALS = "ovat.failed_trials"
ABLATION_FILE = "ovat.ablation_file"  # a probe ablation's file name
PROBE = "ovat.probe"  # same-seed, across-seed, same-seed-deterministic
SOURCE_RUN = "ovat.source_run"  # a follow-up's or probe's source run id
SOURCE_NAME = "ovat.source_name"
TRAINABLE = "ovat.trainable"  # a fine-tune's trainable tensors
BEST_VALUE = "ovat.best_value"  # a sweep's best-ranked value
VERDICT = "ovat.verdict"  # a value run's verdict against the baseline (the ranking's column)
DECISION = "ovat.decision"  # a value run's SEEDS=auto decision (empty for a fixed seed count)
RANKED_OVER = "ovat.ranked_over"  # the sweep ids whose trials a value run's row pools
BEST_MODEL = "ovat.best_model"  # models:/ovat-<ablation>/<version>: its best trial's model
BEST_TRIAL = "ovat.best_trial"  # the run name of that trial
GIT_DIRTY = "ovat.git_dirty"  # "true" when the checkout had uncommitted changes
ENV_PYTHON = "ovat.env.python"  # library versions of the process that logged the run
ENV_TORCH = "ovat.env.torch"
ENV_RAY = "ovat.env.ray"
ENV_MLFLOW = "ovat.env.mlflow"
COMMAND = "ovat.command"  # the command line that started a sweep
MAKE_VARIABLES = "ovat.make"  # the make variables it was given (MAKEFLAGS)
PREDICTED_WALL_S = "ovat.predicted_wall_s"  # a sweep's cost as `make plan` estimated it
PREDICTED_DEVICE_HOURS = "ovat.predicted_device_hours"
WALL_S = "ovat.wall_s"  # and as it was: the sweep command's wall time, Ray's start included

ROLE_SWEEP, ROLE_VALUE, ROLE_TRIAL = "sweep", "value", "trial"
PROBE_ABLATION = "probe"  # the ablation tag of a placement probe's sweep: never "latest"
