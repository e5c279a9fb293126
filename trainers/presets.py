"""Named configs: a few settings under one name, applied over the defaults before an ablation's
base (`preset:` in an ablation file, `PRESET=` on the command line).

`tiny` is the debug model every test and benchmark smoke run uses (as torchtitan's debug model):
seconds per trial on a CPU, the same code path as the real thing.

`gpt` is the language model of `ABLATION=gpt-ffn` at a size a CPU trains in a minute a trial:
4 blocks of width 64 (4 heads), FFN hidden width and codebook 256 (4 x d_model, as in GPT-2),
2,048 windows of 65 bytes a split, batch 32, AdamW at 1e-3 (nanoGPT's rate for small character
models; at the autoencoder's 3e-4, two epochs left every value near 3.84 nats, barely past the
byte frequencies). It sets sizes only: the ablation file names the family and the text.

`group` is the group's run as their code at MinVQVAE 712799c made it (docs/group.md lists every
setting and every remaining difference): ImageNet squashed to 256 px, their random_split of
official train (seed 1337) with official val as test, 4 workers x 256 images (DeepSpeed ZeRO-2
there, DDP here), 10 epochs of AdamW at 3e-4, fp32 with medium matmul precision, 32 px patches
masked with probability 0.5. ROOT= names your ImageNet.
"""

from typing import Any

from trainers.config import ConfigError, ExperimentConfig

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {
        "model.stem_channels": 8,
        "model.hidden_channels": 16,
        "model.res_channels": 4,
        "model.embed_dim": 8,
        "model.codebook_size": 32,
        "data.limit": 64,
        "train.epochs": 1,
        "train.batch_size": 32,
        "train.log_every": 0,
    },
    "gpt": {
        "model.embed_dim": 64,  # d_model
        "model.codebook_size": 256,  # the FFN's hidden width, and the VQs' codebook
        "model.layers": 4,
        "model.heads": 4,
        "data.context": 64,
        "data.limit": 2048,
        "train.batch_size": 32,
        "train.lr": 1e-3,
    },
    "group": {
        "model.bottleneck": "softvq",  # their "VQVAE"
        "model.residual": "group",
        "data.dataset": "imagenet",
        "data.resolution": 256,
        "data.resize": "squash",  # transforms.Resize((256, 256))
        "data.protocol": "random-split",
        "data.split_seed": 1337,
        "data.mask_ratio": 0.5,
        "data.mask_patch": 32,
        "train.epochs": 10,
        "train.batch_size": 256,  # per GPU
        "train.lr": 3e-4,
        "train.weight_decay": 0.01,  # AdamW's default, which they kept
        "train.precision": "fp32",
        "train.matmul_precision": "medium",  # torch.set_float32_matmul_precision('medium')
        "train.channels_last": "off",
        "train.compile": "off",
        "resources.workers": 4,  # devices: 4
        "resources.gpus_per_worker": 1,
        "resources.cpus_per_worker": 4,  # their 4 DataLoader workers per GPU
    },
}


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset(name: str, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """The named config, with `overrides` (dotted keys) on top."""
    return ExperimentConfig().with_overrides({**preset_overrides(name), **(overrides or {})})
