"""Host batches onto the training device, without a host sync per step."""

import torch


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor goes to the GPU through pinned memory, without blocking: a plain `.to()`
    from pageable memory makes the host wait for the GPU's queue (a sync in every step)."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def to_unit(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [0, 1] on device: conversion happens after the copy (none
    when the data already lives on the device)."""
    return to_device(batch, device).float().div_(255)
