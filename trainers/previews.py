"""What a test loss looks like: the same few test images, their masked input and the model's
reconstruction, one row each. Every trial on the same data draws the same images with the same
fixed masks, so pictures of two trials compare like their losses."""

import io

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

from data.config import DataConfig
from data.masking import apply_mask
from trainers.fastpath import PLAIN, FastPath
from trainers.keys import PREVIEW_FILE
from trainers.transfer import to_unit

PREVIEW_IMAGES = 8  # the first test images (in the split's stored order)
PADDING = 2  # pixels between the grid's tiles (make_grid's)
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
    grid = make_grid(rows, nrow=len(images), padding=PADDING, pad_value=1.0)
    pixels = (grid * 255).round().byte().permute(1, 2, 0).numpy()  # (H, W, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


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
