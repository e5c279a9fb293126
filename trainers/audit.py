"""The parameter-update audit: did each tensor really train, and is the architecture what the
name says?

The group once believed a codebook was trained that never received a gradient, and two of
their "ffn" runs trained the VQ model; both are visible here on every run.
"""

import hashlib
from dataclasses import asdict, dataclass

import torch
from torch import nn

CHANGE_TOLERANCE = 0.0  # any bitwise change counts: the audit is about "ever", not "how much"


@dataclass(frozen=True)
class ParamAudit:
    name: str
    shape: str
    trainable: bool
    got_gradient: bool  # ever received a non-zero gradient
    relative_change: float  # ||p - p0|| / ||p0|| (absolute norm where p0 is zero)
    cause: str  # "gradient", "weight decay only", "unchanged"


class UpdateAudit:
    """Snapshots the weights, then records on-device whether each tensor ever got a gradient.

    Hooks keep a device-side flag per tensor, so watching costs no host sync per step.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.seen = {
            n: torch.zeros((), dtype=torch.bool, device=p.device)
            for n, p in model.named_parameters()
        }
        self.handles = [
            p.register_post_accumulate_grad_hook(self._hook(name))
            for name, p in model.named_parameters()
            if p.requires_grad
        ]

    def _hook(self, name: str):
        def mark(param: torch.Tensor) -> None:
            if param.grad is not None:
                self.seen[name] |= param.grad.ne(0).any()

        return mark

    def close(self) -> list[ParamAudit]:
        for handle in self.handles:
            handle.remove()
        return [self._row(name, p) for name, p in self.model.named_parameters()]

    def _row(self, name: str, param: torch.Tensor) -> ParamAudit:
        before, now = self.initial[name], param.detach()
        delta = (now - before).float().norm().item()
        scale = before.float().norm().item()
        got = bool(self.seen[name].item())
        changed = delta > CHANGE_TOLERANCE
        cause = "gradient" if got and changed else "weight decay only" if changed else "unchanged"
        return ParamAudit(
            name,
            str(tuple(param.shape)),
            param.requires_grad,
            got,
            delta / scale if scale else delta,
            cause,
        )


def untrained(rows: list[ParamAudit]) -> list[str]:
    """Tensors marked trainable that never received a gradient: the group's silent bug."""
    return [r.name for r in rows if r.trainable and not r.got_gradient]


def frozen_changed(rows: list[ParamAudit]) -> list[str]:
    return [r.name for r in rows if not r.trainable and r.cause != "unchanged"]


def summary(rows: list[ParamAudit]) -> dict[str, float]:
    return {
        "audit.untrained_params": len(untrained(rows)),
        "audit.frozen_changed": len(frozen_changed(rows)),
    }


def as_records(rows: list[ParamAudit]) -> list[dict]:
    return [asdict(r) for r in rows]


def to_markdown(rows: list[ParamAudit]) -> str:
    lines = [
        "| parameter | shape | trainable | got gradient | relative change | cause |",
        "|---|---|---|---|---:|---|",
    ]
    lines += [
        f"| {r.name} | {r.shape} | {r.trainable} | {r.got_gradient} | "
        f"{r.relative_change:.3g} | {r.cause} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def fingerprint(model: nn.Module) -> str:
    """A hash of module types (with their settings) and parameter shapes, not of values."""
    digest = hashlib.sha256()
    for name, module in model.named_modules():
        digest.update(f"{name}:{type(module).__name__}({module.extra_repr()})\n".encode())
    for name, param in model.named_parameters():
        digest.update(f"{name}:{tuple(param.shape)}\n".encode())
    return digest.hexdigest()[:16]


def weights_hash(model: nn.Module) -> str:
    """A hash of the final weights' bytes: equal hashes mean bit-identical reruns."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        )
    return digest.hexdigest()[:16]
