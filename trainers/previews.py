"""What a test loss looks like: the same few test images, their masked input and the model's
reconstruction, one row each. Every trial on the same data draws the same images with the same
fixed masks, so pictures of two trials compare like their losses."""

import io

import torch
import torch.nn.functional as F
from PIL import Image

from data.config import DataConfig
from data.masking import apply_mask
from trainers.fastpath import PLAIN, FastPath
from trainers.keys import PREVIEW_FILE
from trainers.transfer import to_unit

PREVIEW_IMAGES = 8  # the first test images (in the split's stored order)
PADDING = 2  # pixels between the grid's tiles (torchvision's make_grid's)
ROWS = ("original", "masked input", "reconstruction")


def scale_for(resolution: int) -> int:
    """Small tiles are enlarged (nearest) to about 128 px, so 32 px images can be seen."""
    return max(1, 128 // resolution)


@torch.no_grad()
def reconstruction_grid(
    model: torch.nn.Module,
    images: torch.Tensor,
    keep: torch.Tensor,
    patch: int,
    device: torch.device,
    fast: FastPath = PLAIN,
) -> bytes:
    """PNG bytes of a 3-row grid (original, masked, reconstruction) of uint8 `images`."""
    model.eval()
    original = fast.images(to_unit(images, device))
    masked = apply_mask(original, keep.to(device), patch)
    with fast.autocast_context(device):
        recon = model(masked).z.float().clamp(0, 1)
    rows = torch.cat([original.float(), masked.float(), recon]).cpu()  # (3N, 3, H, W)
    rows = F.interpolate(rows, scale_factor=scale_for(images.shape[-1]), mode="nearest")
    grid = tiled(rows, per_row=len(images), padding=PADDING, pad_value=1.0)
    pixels = (grid * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def tiled(tiles: torch.Tensor, per_row: int, padding: int, pad_value: float) -> torch.Tensor:
    """(C, H', W'): the (N, C, H, W) tiles in rows of `per_row`, `padding` pixels around each,
    as torchvision's make_grid lays them out. Not imported from there: torchvision pulls in
    torch._dynamo, ~3 s of every trial worker's start on a 2-core machine."""
    count, channels, height, width = tiles.shape
    across = min(per_row, count)
    down = -(-count // across)
    cell_h, cell_w = height + padding, width + padding
    grid = tiles.new_full((channels, cell_h * down + padding, cell_w * across + padding), pad_value)
    for index, tile in enumerate(tiles):
        top, left = (index // across) * cell_h + padding, (index % across) * cell_w + padding
        grid[:, top : top + height, left : left + width] = tile
    return grid


def grid_row(image: Image.Image, row: int) -> Image.Image:
    """One row of a `reconstruction_grid` picture (0 original, 1 masked, 2 reconstruction),
    with the padding above it: rows cut this way stack back into a grid."""
    step = (image.height - PADDING) // len(ROWS)  # a tile and one padding
    return image.crop((0, row * step, image.width, (row + 1) * step))


def reconstructions_png(
    model: torch.nn.Module,
    images: torch.Tensor,
    keep: torch.Tensor,
    cfg: DataConfig,
    device: torch.device,
    fast: FastPath = PLAIN,
) -> tuple[str, bytes]:
    """An image trial's preview: (its checkpoint file name, the PNG)."""
    return PREVIEW_FILE, reconstruction_grid(model, images, keep, cfg.patch_size, device, fast)
