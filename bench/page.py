"""docs/benchmarks.md, written by the `make bench` run that measured it: what each row compares,
the machine it ran on, and the table. Never edited by hand."""

import datetime
import os
import platform
from pathlib import Path

from bench.rows import Row, markdown

PAGE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"

ROWS = """| row | value | anchor | target |
|---|---|---|---|
| data: shard loader / ImageFolder | images/s of the prepared uint8 shards (made by the real `imagefolder` preparation) served as float batches | torchvision `ImageFolder` + PIL decode + resize of the same images as JPEG files, same batch | >= 20 |
| prepare: Ray tasks / one process | images/s of `make prepare` as Ray tasks on ImageNet-sized JPEGs to 64 px (after a warm-up pass that starts Ray's workers); at most the CPU count | the same preparation in one process, after its own warm-up pass | >= 0.75 x CPUs |
| Ray Train wrapper | steady-state images/s of the real trial loop under `TorchTrainer`, 1 worker (from MLflow); at most 1 but for noise | a bare PyTorch loop in a 1-CPU Ray task: same model, data, seed, thread and process environment, no TorchTrainer | >= 0.95 |
| reporting + checkpointing | training time / (training + the per-epoch report and checkpoint) | the training passes alone | >= 0.98 |
| threads | total images/s of two concurrent 1-CPU trials | one trial with 2 threads on the same 2 CPUs | >= 0.9 |
| data: batch wait | time gathering a batch / step time | the whole step | <= 0.05 |
| determinism (CPU) | images/s with `train.deterministic=true` | the same bare loop without | >= 0.9 |
| streaming: speed | steady-state images/s of a real trial with `data.stream=on` (default model, 64 px, 1 worker, from MLflow) | the same trial with the train split in memory | >= 0.9 |
| streaming: memory | memory the data path adds at its peak (private memory of this process and every Ray process below it, plus the object store's live bytes) while a 2,000,000-image train split at 64 px is streamed as one worker reads it | the same for 200,000 images, read for 3 epochs (the most processes in each epoch, and the in-memory path's growth, in detail) | <= 1.2 |
| sweep: ovat / plain Tune | wall time of the default sweep at one epoch (7 trials) through ovat, ranking included | the same trials as a hand-written Ray Tune script (`bench/startup.py`): same model, data, seeds and CPUs, trained in Tune's trial actor, logged by Ray's `MLflowLoggerCallback`; no TorchTrainer, validation, test, checkpoints or ranking | <= 1.5 |
| cost estimate: off by | the larger of actual / predicted and predicted / actual wall time of that same sweep, as `make plan` predicted it just before (`docs/cost.md`) | the prediction | <= 1.3 |
| packing | makespan of 8 one-CPU trials | sum of trial durations / concurrency | <= 1.2 |
| scheduling gap | idle slot time per trial | mean trial duration | <= 0.05 |
| fixed cost share of a default trial | Tune starting a trial to its first training step | that plus the default config's training time at the bare loop's rate | <= 0.25 |"""


def machine() -> str:
    """The machine in one line: CPU model and cores, memory, GPU, library versions."""
    import mlflow
    import ray
    import torch

    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if "model name" in line),
        platform.processor() or platform.machine(),
    )
    kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if "MemTotal" in line), 0)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {kib / 2**20:.0f} GiB, {gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__}, Ray {ray.__version__}, "
        f"MLflow {mlflow.__version__}"
    )


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def render(rows: list[Row], seconds: float) -> str:
    today = datetime.date.today().isoformat()
    return f"""# Benchmarks

Written by `make bench`, the run that measured it; never edited by hand. Each value is a ratio of
two things measured in the same run, each layer against its own limit: absolute figures on a
shared machine are for reference only, and ratios move by about 15% from run to run on 2 cores.
The full rows, with their absolute figures, are in `results/bench/<timestamp>-all.json`.

{ROWS}

## The last run

{today}, {seconds / 60:.1f} minutes, on {machine()}.

{markdown(rows)}"""


def write(rows: list[Row], seconds: float) -> Path:
    PAGE.write_text(render(rows, seconds))
    return PAGE
