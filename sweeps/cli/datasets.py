"""`ovat prepare` and `ovat list`: data variants decoded once, and what can be named."""

import argparse

from data.layouts import LAYOUTS
from data.registry import DATASETS, kind
from data.shards import read_manifest
from data.splits import SPLITS
from models.bottlenecks import BOTTLENECKS
from sweeps.cli.common import Command, add_data_options, data_shortcuts
from sweeps.define import ablation as ablations
from trainers.config import FAMILY_DATA, ExperimentConfig
from trainers.paths import check_writable, data_dir
from trainers.presets import PRESETS

READER = {data: family for family, data in FAMILY_DATA.items()}  # data kind -> model.family
# What a prepared variant's examples are, and the sweep that reads them, by the data's kind.
EXAMPLES = {
    "image": lambda data: f"images at {data.resolution} px",
    "text": lambda data: f"windows of {data.context + 1} bytes",
}
NEXT = {
    "image": lambda data, root: (
        f"ABLATION=bottleneck DATASET={data.dataset}{root} RES={data.resolution}"
    ),
    "text": lambda data, root: f"ABLATION=gpt-ffn DATASET={data.dataset}{root}",
}


def cmd_prepare(args: argparse.Namespace) -> None:
    """Decode a variant once into Parquet shards, in parallel on the Ray cluster."""
    shortcuts = {**data_shortcuts(args), "data.protocol": args.protocol,
                 "data.split_seed": args.split_seed}  # fmt: skip
    shortcuts["model.family"] = READER[kind(args.dataset)]  # the family that reads this data
    cfg = ExperimentConfig().with_overrides({k: v for k, v in shortcuts.items() if v is not None})
    check_writable(data_dir(), "data folder")
    from data.registry import is_prepared, prepare

    state = "up to date"
    if not is_prepared(cfg.data, data_dir()):  # a wrong layout is reported before Ray starts
        state = "prepared"
        if cfg.data.dataset in LAYOUTS:  # decoded as Ray tasks; `sample` is built in-process
            from sweeps.run.cluster import ensure_ray

            ensure_ray()
    folder = prepare(cfg.data, data_dir())
    manifest = read_manifest(folder)
    splits = ", ".join(f"{s} {manifest['splits'][s]['count']:,}" for s in SPLITS)
    print(f"ovat: {state}: {folder} ({splits} {EXAMPLES[kind(cfg.data.dataset)](cfg.data)})")
    if manifest.get("protocol_detail"):
        print(f"ovat: splits: {manifest['protocol_detail']}")
    skipped = manifest.get("skipped", [])
    for entry in skipped[:5]:
        print(f"ovat: skipped {entry['path']}: {entry['reason']}")
    if len(skipped) > 5:
        print(
            f"ovat: ... and {len(skipped) - 5} more skipped, listed in {folder / 'manifest.json'}"
        )
    root = f" ROOT={cfg.data.root}" if cfg.data.root else ""
    print(f"ovat: next: make sweep {NEXT[kind(cfg.data.dataset)](cfg.data, root)}")


def cmd_list(args: argparse.Namespace) -> None:
    print("ablations: " + ", ".join(ablations.available()))
    print("bottlenecks: " + ", ".join(sorted(BOTTLENECKS)))
    print("datasets: " + ", ".join(sorted(DATASETS)))
    print("presets: " + ", ".join(PRESETS))


def prepare_options(command: argparse.ArgumentParser) -> None:
    add_data_options(command, required=True)
    command.add_argument("--protocol", help="holdout or official (default: the variant's)")
    command.add_argument("--split-seed", help="seed of the holdout cut (default 0)")


COMMANDS = (
    Command(
        "prepare", "decode a data variant once into Parquet shards", prepare_options, cmd_prepare
    ),
    Command("list", "list ablations, bottlenecks, datasets and presets", lambda _: None, cmd_list),
)
