import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


def zetta(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
    )


def test_help_everywhere() -> None:
    for args in ([], ["run"], ["show-registry"]):
        r = zetta(*args, "--help")
        assert r.returncode == 0, r.stderr
        assert "Usage:" in r.stdout


def test_help_does_not_import_torch() -> None:
    code = "import sys; from zetta_utils.cli import main; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert r.stdout.strip() == "False"


def test_show_registry_lists_types() -> None:
    r = zetta("show-registry", "--signatures", "BBox3D")
    assert r.returncode == 0, r.stderr
    assert "BBox3D.from_coords(start_coord" in r.stdout
    assert "lambda" not in r.stdout


def test_run_json_and_yaml_spec(tmp_path: Path) -> None:
    spec = {"@type": "BBox3D.from_coords", "start_coord": [0, 0, 0], "end_coord": [1, 1, 1]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    r = zetta("-v", "run", str(tmp_path / "spec.json"))
    assert r.returncode == 0, r.stderr
    assert "spec built: BBox3D(bounds=((0, 1), (0, 1), (0, 1))" in r.stderr
    (tmp_path / "spec.yaml").write_text(
        "'@type': BBox3D.from_coords\nstart_coord: [0, 0, 0]\nend_coord: [2, 1, 1]\n"
    )
    r = zetta("run", str(tmp_path / "spec.yaml"))
    assert r.returncode == 0, r.stderr
    assert "spec built: BBox3D(bounds=((0, 2)" in r.stderr


def test_bad_spec_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(
        json.dumps({"@type": "BBox3D.from_cords", "start_coord": [0, 0, 0]})
    )
    r = zetta("run", str(tmp_path / "bad.json"))
    assert r.returncode == 2
    assert "BBox3D.from_coords" in r.stderr
    assert "Traceback" not in r.stderr
    r = zetta("--debug", "run", str(tmp_path / "bad.json"))
    assert r.returncode != 0
    assert "Traceback" in r.stderr


def test_invalid_json_points_at_position(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"@type": "x",\n  oops}')
    r = zetta("run", str(tmp_path / "broken.json"))
    assert r.returncode == 2
    assert "broken.json:2:" in r.stderr


@pytest.mark.parametrize("name", ["missing.json"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    r = zetta("run", str(tmp_path / name))
    assert r.returncode == 2
    assert "does not exist" in r.stderr


def test_failing_task_exits_1_with_task_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zetta_utils import builder, mazepa
    from zetta_utils.cli.main import main

    @builder.register("tests.cli.always_fails_task")
    def make_failing_task(x: int) -> mazepa.Task[None]:
        @mazepa.taskable_operation(operation_name="always_fails")
        def always_fails(x: int) -> None:
            raise ValueError(f"bad input {x}")

        return always_fails.make_task(x)

    (tmp_path / "spec.json").write_text(
        json.dumps(
            {
                "@type": "mazepa.execute",
                "target": {"@type": "tests.cli.always_fails_task", "x": 7},
                "show_progress": False,
            }
        )
    )
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path / "spec.json")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "the run failed" in err
    assert "always_fails" in err and "ValueError: bad input 7" in err
