"""The sample indexer protocol."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

IndexT_co = TypeVar("IndexT_co", covariant=True)


class SampleIndexer(ABC, Generic[IndexT_co]):
    """Maps sample numbers ``0 .. len(self) - 1`` (negative numbers count from the end) to layer
    indices."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of samples."""

    @abstractmethod
    def __call__(self, idx: int) -> IndexT_co:
        """The layer index of sample ``idx``; IndexError outside ``-len(self) .. len(self) - 1``."""

    def check_sample_number(self, idx: int) -> int:
        """``idx`` as a number in ``0 .. len(self) - 1``, or a clear error."""
        if isinstance(idx, bool) or not hasattr(idx, "__index__"):
            raise TypeError(f"sample number: expected an integer, got {type(idx).__name__} {idx!r}")
        i = int(idx.__index__())
        n = len(self)
        if not -n <= i < n:
            raise IndexError(
                f"sample number {i} is out of range: there are {n} samples (0 .. {n - 1})"
            )
        return i + n if i < 0 else i
