"""Specs written for the original's mazepa names and arguments run here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zetta_utils import builder, mazepa


@mazepa.taskable_operation
def _append(path: str, text: str) -> None:
    if text == "fail":
        raise ValueError("this task fails")
    with open(path, "a") as f:
        f.write(text + "\n")


@builder.register("tests_compat.append_flow")
@mazepa.flow_schema
def _append_flow(path: str, texts: list[str]) -> Iterator[Any]:
    yield [_append.make_task(path, t) for t in texts]


def _spec(path: Path, **execute_kwargs: Any) -> dict[str, Any]:
    return {
        "@type": "mazepa.execute_locally",
        "show_progress": False,
        **execute_kwargs,
        "target": {
            "@type": "mazepa.seq_flow",
            "stages": [
                {"@type": "tests_compat.append_flow", "path": str(path), "texts": ["a1", "a2"]},
                {
                    "@type": "mazepa.concurrent_flow",
                    "stages": [
                        {"@type": "tests_compat.append_flow", "path": str(path), "texts": ["b"]},
                        {"@type": "tests_compat.append_flow", "path": str(path), "texts": ["c"]},
                    ],
                },
                {
                    "@type": "mazepa.sequential_flow",
                    "stages": [
                        {"@type": "tests_compat.append_flow", "path": str(path), "texts": ["d"]},
                    ],
                },
            ],
        },
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "debug": True,
            "do_dryrun_estimation": False,
            "batch_gap_sleep_sec": 0.05,
            "max_batch_len": 10,
        },
        {"num_procs": 1, "checkpoint_interval_sec": None, "require_interrupt_confirm": False},
    ],
)
def test_execute_locally_runs_seq_and_concurrent_stages(
    tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    out = tmp_path / "events.txt"
    summary = builder.build(_spec(out, **kwargs))
    assert summary.tasks_done == 5
    lines = out.read_text().split()
    assert sorted(lines[:2]) == ["a1", "a2"]
    assert sorted(lines[2:4]) == ["b", "c"]
    assert lines[4] == "d"


def test_execute_locally_checkpoint_and_failures(tmp_path: Path) -> None:
    out = tmp_path / "events.txt"
    spec = _spec(out, raise_on_failed_task=False)
    spec["target"]["stages"][1]["stages"][0]["texts"] = ["fail"]
    summary = builder.build(spec)
    assert summary.tasks_failed == 1 and not summary.completed
    with pytest.raises(mazepa.ExecutionError, match="this task fails") as info:
        builder.build(_spec(out, raise_on_failed_task=True) | {"target": spec["target"]})
    assert len(info.value.task_failures) == 1  # the original error's attributes are kept
    record = tmp_path / "done.ckpt"
    builder.build(_spec(out, checkpoint=str(record)))
    before = out.read_text()
    again = builder.build(_spec(out, checkpoint=str(record)))
    assert again.tasks_done == 0 and out.read_text() == before


def test_execute_locally_refuses_a_custom_state(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path / "x", state_constructor={"@type": "lambda", "lambda_str": "lambda: None"}
    )
    with pytest.raises(ValueError, match="state_constructor"):
        builder.build(spec)
    with pytest.raises(ValueError, match="debug"):
        builder.build(_spec(tmp_path / "x", debug=True, num_procs=2))


def test_seq_flow_needs_its_stages() -> None:
    with pytest.raises(TypeError, match="give `stages`"):
        builder.build({"@type": "mazepa.seq_flow"})


def test_mazepa_execute_takes_the_original_arguments(tmp_path: Path) -> None:
    out = tmp_path / "events.txt"
    spec = _spec(out)
    spec["target"]["stages"][1]["stages"][0]["texts"] = ["fail"]
    original = {
        "@type": "mazepa.execute",
        "target": spec["target"],
        "raise_on_failed_task": False,
        "do_dryrun_estimation": False,
        "max_batch_len": 5,
        "batch_gap_sleep_sec": 0.01,
        "checkpoint_interval_sec": None,
        "show_progress": False,
    }
    summary = builder.build(original)
    assert summary.tasks_failed == 1 and summary.tasks_done == 3
    ours = builder.build(
        {**original, "raise_on_failed_task": None, "raise_on_failure": False, "max_retry": 0}
    )
    assert ours.tasks_failed == 1
    with pytest.raises(TypeError, match="one of"):
        builder.build({**original, "raise_on_failure": False})
    with pytest.raises(ValueError, match="execute_on_gcp_with_sqs"):
        builder.build({**original, "task_queue": {"@type": "lambda", "lambda_str": "lambda: 0"}})
    with pytest.raises(TypeError, match="no_such_argument"):
        builder.build({**original, "no_such_argument": 1})
