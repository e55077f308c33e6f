"""Progress of a remote run (local queue workers against a real SQS-compatible server): the
bars show the total the flow declared from the first frame, as in a local run."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa import progress
from zetta_utils.mazepa_addons import execute_on_gcp_with_sqs

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.slow


@mazepa.taskable_operation
def square(i: int) -> int:
    return i * i


@mazepa.flow_schema
def declared_squares(n: int) -> Iterator[Any]:
    progress.expect_tasks("square", n)
    for i in range(n):
        yield square.make_task(i)


def test_remote_bars_show_the_declared_total_in_every_frame(
    sqs_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws its bars on the captured stdout
    monkeypatch.setenv("COLUMNS", "120")
    summary = execute_on_gcp_with_sqs(
        declared_squares(8),
        worker_replicas=1,
        local_test=True,
        visibility_timeout_s=4,
        show_progress=True,
        max_pending_tasks=2,  # the scheduler sees few tasks at a time; the bar, all of them
    )
    assert summary is not None
    frames = re.findall(r"square\b[^\n\r]*?(\d+)/(\d+)(\+?)", capsys.readouterr().out)
    assert frames, "no progress bar was drawn"
    assert all(total == "8" and not plus for _, total, plus in frames), frames
    assert frames[-1][:2] == ("8", "8")
    assert summary.sentence().startswith("Done in ") and "8 tasks done" in summary.sentence()
