"""Which local worker runs which task: contiguous spans of the flows' order per worker.

Flows yield their tasks in space order (a chunk, then its neighbour), and the padded reads of
neighbouring chunks share storage chunks, which each worker process keeps decoded in its read
cache. Dealt out in turn (task 1 to worker A, 2 to B, 3 to A, ...), every worker would decode
nearly every storage chunk; here each worker takes a *span* of consecutive tasks and works
through it in order, so that two workers meet only where their spans touch.

A worker with nothing left in its lane claims its share of the tasks nobody has claimed yet (all
of them when the other lanes still hold work); when there are none, it steals the far half of the
fullest lane: the owner keeps the tasks next to those it is running, the thief gets a contiguous
run too, and no worker idles while another holds unsent work. Tasks given with ``first`` (retries,
work that consumes finished results) go before every lane, to whichever worker asks next, or, given
a lane (the worker that ran most of what the task reads, see ``Task.reads_from``), to that lane's
worker before anything else; another worker takes them only when nothing else is left to it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["TaskLanes"]

T = TypeVar("T")


class TaskLanes(Generic[T]):
    """Unsent tasks of ``num_lanes`` workers (lane ``i`` belongs to worker ``i``)."""

    def __init__(self, num_lanes: int):
        if isinstance(num_lanes, bool) or not isinstance(num_lanes, int) or num_lanes < 1:
            raise ValueError(f"`num_lanes` must be a positive integer, got {num_lanes!r}")
        self._first: deque[T] = deque()
        self._unclaimed: deque[T] = deque()
        self._lanes: list[deque[T]] = [deque() for _ in range(num_lanes)]
        # lane -> ``first`` tasks that would rather run on its worker
        self._preferred: list[deque[T]] = [deque() for _ in range(num_lanes)]
        self._size = 0  # tasks held (asked for at every dispatch: counted, not summed)

    def __len__(self) -> int:
        return self._size

    def add(self, items: Iterable[T]) -> None:
        """Tasks in the flows' order, after those already held."""
        before = len(self._unclaimed)
        self._unclaimed.extend(items)
        self._size += len(self._unclaimed) - before

    def add_first(self, items: Iterable[T], lane: int | None = None) -> None:
        """Tasks to go before everything held, in their order; with ``lane``, to that lane's
        worker (see :meth:`take`)."""
        queue = self._first if lane is None else self._preferred[lane]
        items = list(items)
        queue.extendleft(reversed(items))
        self._size += len(items)

    def num_preferred(self, lane: int) -> int:
        """``first`` tasks waiting for the worker of ``lane``."""
        return len(self._preferred[lane])

    def take_preferred(self, lane: int, most: int) -> list[T]:
        """Up to ``most`` of the ``first`` tasks given to ``lane``, and nothing else."""
        queue = self._preferred[lane]
        taken = [queue.popleft() for _ in range(min(most, len(queue)))]
        self._size -= len(taken)
        return taken

    def put_back(self, lane: int, items: Iterable[T]) -> None:
        """Tasks taken from ``lane`` and not run (their worker died): to the front of the lane."""
        items = list(items)
        self._lanes[lane].extendleft(reversed(items))
        self._size += len(items)

    def lane_sizes(self) -> list[int]:
        return [len(lane) for lane in self._lanes]

    def take(self, lane: int, most: int) -> list[T]:
        """Up to ``most`` tasks for the worker of ``lane``: the ``first`` ones given to it, the
        ``first`` ones given to no lane, then its lane in order, claiming or stealing a span
        whenever the lane runs dry; when nothing else is left, the ``first`` tasks given to the
        other lanes (the fullest first), rather than leave this worker idle."""
        taken = self.take_preferred(lane, most)
        given = len(taken)  # (counted off already)
        first = self._first
        while first and len(taken) < most:
            taken.append(first.popleft())
        own = self._lanes[lane]
        while len(taken) < most:
            if not own and not self._claim(lane):
                break
            while own and len(taken) < most:
                taken.append(own.popleft())
        while len(taken) < most:
            fullest = max(self._preferred, key=len)
            if not fullest:
                break
            taken.append(fullest.pop())  # the last given: its reads are the least likely kept
        self._size -= len(taken) - given
        return taken

    def clear(self) -> None:
        self._first.clear()
        self._unclaimed.clear()
        for lane in self._lanes:
            lane.clear()
        for queue in self._preferred:
            queue.clear()
        self._size = 0

    def _claim(self, lane: int) -> bool:
        """Fill the (empty) ``lane`` with a span; False if there is no work left to claim."""
        own = self._lanes[lane]
        unclaimed = self._unclaimed
        if unclaimed:
            # shared among the lanes that are empty now (this one included): a lane still
            # holding work gets more when it runs dry, from what arrives meanwhile
            empty = sum(1 for other in self._lanes if not other)
            for _ in range(math.ceil(len(unclaimed) / empty)):
                own.append(unclaimed.popleft())
            return True
        victim = max(self._lanes, key=len)
        if not victim:
            return False
        stolen = [victim.pop() for _ in range((len(victim) + 1) // 2)]
        own.extend(reversed(stolen))
        return True
