"""The data settings: which variant, at what resolution, masked how."""

from dataclasses import dataclass

from data.splits import PROTOCOLS

RESIZES = ("crop", "squash")  # how an image file becomes resolution x resolution (data.decode)
STREAMS = ("auto", "on", "off")  # data.stream: how the train split reaches the workers


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Which images (or text), at what size, split how, masked how."""

    dataset: str = "sample"  # images (docs/data.md); text for model.family gpt: pysource, text
    root: str = ""  # source folder for on-disk variants; unused by `sample`
    protocol: str = ""  # holdout, random-split (the group's) or official; "": the variant's
    split_seed: int = 0  # seeds the train/val cut and the data.limit subset
    resolution: int = 32  # training images are resolution x resolution
    resize: str = "crop"  # crop: shorter side, centre crop; squash: whole image (the group's)
    mask_ratio: float = 0.5  # probability that a patch of the encoder input is zeroed
    mask_patch: int = 0  # patch side in px; 0 scales the group's 32 px at 256 px: resolution // 8
    eval_mask_seed: int = 0  # val/test masks are fixed per image by this seed, so scores compare
    limit: int = 0  # a seeded subset of this many images per split (0: all); for smoke runs
    stream: str = "auto"  # train split from Parquet via Ray Data (on), in memory (off), or auto
    context: int = 128  # text: bytes a model reads per window (a window stores context + 1)

    def __post_init__(self):
        if self.resolution < 8:
            raise ValueError(f"data.resolution must be >= 8, got {self.resolution}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"data.mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.mask_patch < 0:
            raise ValueError(f"data.mask_patch must be >= 0, got {self.mask_patch}")
        if self.resolution % self.patch_size:
            raise ValueError(
                f"data.resolution {self.resolution} is not a multiple of the mask patch "
                f"{self.patch_size}"
            )
        if self.protocol and self.protocol not in PROTOCOLS:
            raise ValueError(
                f"data.protocol must be one of {', '.join(PROTOCOLS)} (or empty for the "
                f"variant's default), got {self.protocol!r}"
            )
        if self.resize not in RESIZES:
            raise ValueError(
                f"data.resize must be one of {', '.join(RESIZES)}, got {self.resize!r}"
            )
        if self.stream not in STREAMS:
            raise ValueError(
                f"data.stream must be one of {', '.join(STREAMS)}, got {self.stream!r}"
            )
        if self.context < 1:
            raise ValueError(f"data.context must be >= 1, got {self.context}")
        if self.limit < 0:
            raise ValueError(f"data.limit must be >= 0, got {self.limit}")

    @property
    def patch_size(self) -> int:
        return self.mask_patch or max(1, self.resolution // 8)
