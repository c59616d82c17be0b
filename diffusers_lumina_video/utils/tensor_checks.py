"""Checks on user tensors that the model's maths would otherwise turn into NaN videos or errors deep inside torch.

Type checks are free. Value checks (finiteness, a valid token per caption) read a result back to the host, a device
sync, so they run only outside `torch.compile` tracing and outside `skip_value_checks()`: a pipeline checks its
inputs once per call and then skips the per-step checks of the transformer it calls.
"""

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import torch


_VALUE_CHECKS = contextvars.ContextVar("lumina_video_value_checks", default=True)


@contextlib.contextmanager
def skip_value_checks() -> Iterator[None]:
    """Turns value checks off in this block (inputs already checked once)."""
    token = _VALUE_CHECKS.set(False)
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def value_checks_enabled() -> bool:
    # `is_compiling` first: Dynamo folds it to a constant, so the context variable is never traced.
    return not torch.compiler.is_compiling() and _VALUE_CHECKS.get()


def check_tensor(name: str, value: object, kind: str = "float") -> torch.Tensor:
    """`value` is a tensor of the `kind` given: `"float"` (floating point) or `"mask"` (bool or integer)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(value).__name__}.")
    if kind == "float" and not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {value.dtype}.")
    if kind == "mask" and (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"`{name}` must be a bool or integer tensor (1 for real tokens), got {value.dtype}.")
    return value


def check_values(conditions: Sequence[tuple[torch.Tensor, str]]) -> None:
    """Raises `ValueError(message)` for the first condition (a one-element bool tensor) that is False; all of them are
    read back in a single device sync."""
    if not conditions:
        return
    device = conditions[0][0].device
    flags = torch.stack([condition.reshape(()).to(device) for condition, _ in conditions]).tolist()
    for ok, (_, message) in zip(flags, conditions, strict=True):
        if not ok:
            raise ValueError(message)


def finite(name: str, tensor: torch.Tensor) -> tuple[torch.Tensor, str]:
    """A `check_values` condition: no NaN or infinity in `tensor`."""
    return torch.isfinite(tensor).all(), f"`{name}` must be finite; it holds NaN or infinite values."


def has_token_per_row(name: str, mask: torch.Tensor) -> tuple[torch.Tensor, str]:
    """A `check_values` condition: every row of a `[B, L]` mask marks at least one real token."""
    return mask.bool().any(dim=1).all(), f"Every row of `{name}` needs at least one real token (a 1)."
