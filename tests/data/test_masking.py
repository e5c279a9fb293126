import torch

from data.masking import apply_mask, expand_grid, fixed_eval_grid, patch_keep_grid


def test_mask_ratio_is_respected_on_average():
    keep = patch_keep_grid(2000, 8, 0.5, torch.Generator().manual_seed(0))
    assert abs(keep.float().mean().item() - 0.5) < 0.01
    none_dropped = patch_keep_grid(10, 8, 0.0, torch.Generator().manual_seed(0))
    assert none_dropped.all()


def test_masks_zero_whole_aligned_patches_only():
    images = torch.rand(3, 3, 32, 32) + 0.1  # no natural zeros
    keep = patch_keep_grid(3, 8, 0.5, torch.Generator().manual_seed(1))
    masked = apply_mask(images, keep, patch=4)
    full = expand_grid(keep, 4)
    assert torch.equal(masked == 0, (~full).expand_as(masked))
    assert torch.equal(masked[full.expand_as(masked)], images[full.expand_as(masked)])


def test_eval_masks_are_fixed_by_seed_and_independent_of_batching():
    a, b = fixed_eval_grid(100, 8, 0.5, seed=0), fixed_eval_grid(100, 8, 0.5, seed=0)
    assert torch.equal(a, b)
    assert not torch.equal(a, fixed_eval_grid(100, 8, 0.5, seed=1))
    # image i gets the same mask whether the split is scored in one batch or sliced
    assert torch.equal(a[40:60], fixed_eval_grid(100, 8, 0.5, seed=0)[40:60])


def test_train_masks_follow_the_generator_seed():
    def draw(seed):
        return patch_keep_grid(16, 8, 0.5, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
