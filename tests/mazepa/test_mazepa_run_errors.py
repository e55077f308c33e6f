"""Errors that end a started run are marked as such (``zetta run`` exits 1 for them, 2 for spec
errors found before anything ran)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from zetta_utils import builder, mazepa
from zetta_utils.mazepa.interrupts import raised_while_running


@mazepa.taskable_operation
def nothing() -> None:
    return None


class BrokenBackend:
    def free_slots(self) -> int:
        return 1

    def submit(self, tasks: Sequence[mazepa.Task[Any]]) -> None:
        pass

    def poll_outcomes(self, timeout: float) -> list[Any]:
        raise ConnectionRefusedError("the queue server went away")

    def shutdown(self, cancel: bool = False) -> None:
        pass


def test_an_error_escaping_a_run_is_marked() -> None:
    with pytest.raises(ConnectionRefusedError) as info:
        mazepa.execute(nothing.make_task(), executor=BrokenBackend(), show_progress=False)
    assert raised_while_running(info.value)
    wrapped = builder.BuilderError("", "building 'x' failed")
    wrapped.__cause__ = info.value
    assert raised_while_running(wrapped)


def test_an_argument_error_before_the_run_is_not_marked() -> None:
    with pytest.raises(ValueError) as info:
        mazepa.execute(nothing.make_task(), num_procs=0)
    assert not raised_while_running(info.value)
