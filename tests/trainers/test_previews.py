import io

import numpy as np
import torch
from PIL import Image

from data.masking import fixed_eval_grid
from models.autoencoder import Autoencoder
from tests.conftest import tiny_model
from trainers.previews import PADDING, grid_row, reconstruction_grid, scale_for, tiled


def picture(n: int = 4, res: int = 16) -> tuple[Image.Image, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    images = (torch.rand(n, 3, res, res) * 255).byte()
    keep = fixed_eval_grid(n, 4, 0.5, seed=0)
    png = reconstruction_grid(
        Autoencoder(tiny_model()), images, keep, res // 4, torch.device("cpu")
    )
    return Image.open(io.BytesIO(png)).convert("RGB"), images, keep


def test_the_picture_shows_originals_masked_inputs_and_reconstructions_in_rows():
    image, images, keep = picture()
    tile = 16 * scale_for(16)  # 16 px tiles enlarged to 128
    assert image.size == (4 * (tile + PADDING) + PADDING, 3 * (tile + PADDING) + PADDING)
    first = np.asarray(grid_row(image, 0))[PADDING : PADDING + tile, PADDING : PADDING + tile]
    original = images[0].permute(1, 2, 0).numpy().repeat(scale_for(16), 0).repeat(8, 1)
    assert np.array_equal(first, original)  # the stored pixels, exactly
    masked = np.asarray(grid_row(image, 1))[PADDING : PADDING + tile, PADDING : PADDING + tile]
    dropped = ~keep[0, 0].numpy().repeat(4 * scale_for(16), 0).repeat(32, 1)
    assert dropped.any() and (masked[dropped] == 0).all()  # masked patches are black
    assert not np.array_equal(np.asarray(grid_row(image, 2)), np.asarray(grid_row(image, 0)))


def test_the_tiles_are_laid_out_as_torchvisions_make_grid_lays_them():
    from torchvision.utils import make_grid

    tiles = torch.rand(7, 3, 5, 6)
    for per_row in (1, 3, 7, 9):
        expected = make_grid(tiles, nrow=per_row, padding=PADDING, pad_value=1.0)
        assert torch.equal(tiled(tiles, per_row, PADDING, 1.0), expected), per_row


def test_a_trial_worker_does_not_import_torchvision():
    """torchvision imports torch._dynamo: ~3 s more of every trial worker's start here."""
    import subprocess
    import sys

    code = "import sys, trainers.trial; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
