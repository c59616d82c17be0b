"""Time-aware sampling values: a constant, or `(t_start, value)` pairs over Lumina time (0 = noise, 1 = data)."""

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np


T = TypeVar("T")
PatchSize = tuple[int, int, int]


@dataclass(frozen=True)
class TimeSchedule(Generic[T]):
    """Piecewise-constant value of the time `t` at the start of a step: the value whose `t_start` is the largest
    one not above `t` (the reference's `(v0, (t1, v1), ...)` notation)."""

    points: tuple[tuple[float, T], ...]

    @classmethod
    def parse(cls, name: str, value: Any, parse_value: Callable[[str, Any], T]) -> "TimeSchedule[T]":
        """Reads a constant or a list of `(t_start, value)` pairs; errors name the argument `name`."""
        if not _looks_like_schedule(value):
            return cls(((0.0, parse_value(name, value)),))
        points = tuple((float(t_start), parse_value(name, v)) for t_start, v in value)
        starts = [t_start for t_start, _ in points]
        if starts[0] != 0.0:
            raise ValueError(f"`{name}` schedule must start at t_start 0.0, got {starts[0]} in {value!r}.")
        if any(b <= a for a, b in itertools.pairwise(starts)) or starts[-1] >= 1.0:
            raise ValueError(f"`{name}` schedule needs increasing t_start values in [0, 1), got {starts}.")
        return cls(points)

    def at(self, t: float) -> T:
        value = self.points[0][1]
        for t_start, candidate in self.points:
            if t_start <= t:
                value = candidate
        return value

    @property
    def values(self) -> list[T]:
        return [value for _, value in self.points]


def _looks_like_schedule(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(
            isinstance(point, Sequence) and len(point) == 2 and isinstance(point[0], numbers.Real) for point in value
        )
    )


def parse_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` takes a number or a list of (t_start, number) pairs, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    return float(value)


def patch_size_parser(allowed: Sequence[PatchSize]) -> Callable[[str, Any], PatchSize]:
    """A value parser that accepts only the transformer's trained patchifications."""

    def parse(name: str, value: Any) -> PatchSize:
        patch = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
        if patch not in allowed:
            raise ValueError(f"`{name}` must be one of {list(allowed)} (pF, pH, pW), got {value!r}.")
        return patch

    return parse


@dataclass(frozen=True)
class StepSettings:
    """What one denoising step uses."""

    guidance_scale: float
    motion_score: float
    negative_motion_score: float
    patch_size: PatchSize


@dataclass(frozen=True)
class SamplingSchedule:
    """All time-aware call arguments, resolved once per step by `at(t)`."""

    guidance_scale: TimeSchedule[float]
    motion_score: TimeSchedule[float]
    negative_motion_score: TimeSchedule[float]
    patch_size: TimeSchedule[PatchSize]

    @classmethod
    def parse(
        cls,
        guidance_scale: Any,
        motion_score: Any,
        negative_motion_score: Any,
        patch_size: Any,
        allowed_patch_sizes: Sequence[PatchSize],
    ) -> "SamplingSchedule":
        return cls(
            guidance_scale=TimeSchedule.parse("guidance_scale", guidance_scale, parse_float),
            motion_score=TimeSchedule.parse("motion_score", motion_score, parse_float),
            negative_motion_score=TimeSchedule.parse("negative_motion_score", negative_motion_score, parse_float),
            patch_size=TimeSchedule.parse("patch_size", patch_size, patch_size_parser(allowed_patch_sizes)),
        )

    def at(self, t: float) -> StepSettings:
        return StepSettings(
            guidance_scale=self.guidance_scale.at(t),
            motion_score=self.motion_score.at(t),
            negative_motion_score=self.negative_motion_score.at(t),
            patch_size=self.patch_size.at(t),
        )

    @property
    def uses_guidance(self) -> bool:
        return any(scale > 1.0 for scale in self.guidance_scale.values)


def lumina_sigmas(num_inference_steps: int) -> np.ndarray:
    """The sigmas (`1 - t`, before the scheduler's shift) of the reference's Euler grid: `num_inference_steps + 1`
    evenly spaced times from noise to data, the last step landing on the data. Pass them to
    `FlowMatchEulerDiscreteScheduler.set_timesteps(sigmas=...)`."""
    return np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps)
