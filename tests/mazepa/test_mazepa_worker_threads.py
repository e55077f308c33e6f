"""Local workers' library threads sized for the run's processes (mazepa.worker_threads), and the
TensorStore backend honouring the setting."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
import pytest

from zetta_utils import mazepa
from zetta_utils.mazepa import worker_threads
from zetta_utils.mazepa.local_pool import LocalProcessExecutor

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ENV = worker_threads.TS_DATA_COPY_CONCURRENCY_ENV


@mazepa.taskable_operation
def record_settings(path: str) -> None:
    Path(path).write_text(json.dumps(worker_threads.current()))


def _run_and_read(tmp_path: Path, num_procs: int) -> dict[str, object]:
    out = tmp_path / f"settings{num_procs}.json"
    mazepa.execute(
        [record_settings.make_task(str(out))],
        num_procs=num_procs,
        show_progress=False,
        worker_start_cost_s=0,
    )
    result: dict[str, object] = json.loads(out.read_text())
    return result


def test_each_worker_gets_its_share_of_the_cores() -> None:
    assert worker_threads.worker_environment(2, cpu_count=2, environ={}) == {ENV: "1"}
    assert worker_threads.worker_environment(3, cpu_count=16, environ={}) == {ENV: "5"}
    assert worker_threads.worker_environment(4, cpu_count=1, environ={}) == {ENV: "1"}
    assert worker_threads.worker_environment(1, cpu_count=8, environ={}) == {ENV: "8"}


def test_the_runs_environment_overrides_the_share() -> None:
    assert worker_threads.worker_environment(2, cpu_count=2, environ={ENV: "3"}) == {ENV: "3"}
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match=ENV):
            worker_threads.worker_environment(2, environ={ENV: bad})


def test_a_bad_setting_fails_before_any_worker_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "none")
    with pytest.raises(ValueError, match=f"{ENV} must be a positive integer, got 'none'"):
        LocalProcessExecutor(2)


def test_a_task_sees_its_workers_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    seen = _run_and_read(tmp_path, 2)
    cores = worker_threads.worker_environment(2)[ENV]
    assert seen["num_procs"] == 2 and seen["ts_data_copy_concurrency"] == int(cores)
    # one intra-op thread where the fork server has torch imported already; else not imported
    assert seen["torch_threads"] in (None, 1)
    monkeypatch.setenv(ENV, "3")
    assert _run_and_read(tmp_path, 2)["ts_data_copy_concurrency"] == 3


def test_a_serial_run_keeps_the_libraries_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    seen = _run_and_read(tmp_path, 1)
    assert seen["num_procs"] is None and seen["ts_data_copy_concurrency"] is None


def test_the_tensorstore_backend_uses_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zetta_utils.layer.volumetric.tensorstore import backend as ts_backend
    from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

    assert ts_backend.DATA_COPY_CONCURRENCY_ENV == ENV
    layer = build_ts_layer(
        f"file://{tmp_path}/vol",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[[4, 4, 40]],
        info_chunk_size=[8, 8, 1],
        info_dataset_size=[16, 16, 1],
        info_encoding="raw",
    )
    backend = layer.backend
    monkeypatch.delenv(ENV, raising=False)
    assert backend._context()["data_copy_concurrency"].to_json() == {}
    monkeypatch.setenv(ENV, "1")
    assert backend._context()["data_copy_concurrency"].to_json() == {"limit": 1}
    monkeypatch.setenv(ENV, "0")
    with pytest.raises(ValueError, match=f"{ENV} must be a positive integer"):
        backend._context()
