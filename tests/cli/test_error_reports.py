"""What `zetta run` prints when a spec or a task is wrong, and its exit codes (--debug shows
more, never changes the code): a lambda that does not match op_kwargs is refused before the run
(2); a misspelled argument is one short line (2); a task that fails is named by its region and
level, with the user's own frame of the traceback first (1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetta_utils.cli.main import _State, main
from zetta_utils.mazepa.tracebacks import is_internal_file, shorten_traceback

REGION = (
    "  on level 0, voxels (29696, 16384, 2000) - (29952, 16640, 2001) at (16, 16, 40) nm, "
    "i.e. nm (475136, 262144, 80000) - (479232, 266240, 80040)"
)


def _spec(lambda_str: str, extra: str = "") -> str:
    return f"""
#SRC: "file://~/.zetta_utils/demo/fafb_v15/img_norm"
"@type": "mazepa.execute"
show_progress: false
target: {{
    "@type": "build_subchunkable_apply_flow"
    bbox: {{
        "@type": "BBox3D.from_coords"
        start_coord: [29696, 16384, 2000]
        end_coord: [29696 + 256, 16384 + 256, 2001]
        resolution: [16, 16, 40]
    }}
    dst_resolution: [16, 16, 40]
    processing_chunk_sizes: [[256, 256, 1]]
    skip_intermediaries: true
    fn: {{"@type": "lambda", lambda_str: "{lambda_str}"}}
    op_kwargs: src: {{"@type": "build_cv_layer", path: #SRC}}
    dst: {{
        "@type": "build_cv_layer"
        path: "file://~/out"
        info_reference_path: #SRC
        info_chunk_size: [256, 256, 1]
        on_info_exists: "overwrite"
    }}
    {extra}
}}
"""


def _zetta(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, list[str]]:
    monkeypatch.setattr(_State, "debug", False)
    monkeypatch.setattr(_State, "resume_hint", None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    code = info.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.splitlines()


def _chunk_files(home: Path) -> list[Path]:
    return [p for p in (home / "out").rglob("*") if p.is_file() and p.name != "info"]


@pytest.mark.slow
def test_a_lambda_that_does_not_match_op_kwargs_is_refused_before_the_run(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.cue"
    spec.write_text(_spec("lambda img: img"))
    code, err = _zetta(capsys, monkeypatch, "run", str(spec))
    assert code == 2
    assert err == [
        "Error: at `target.op_kwargs`: `fn` 'lambda img: img' cannot be called as fn(**op_kwargs): "
        "op_kwargs gives 'src', which it does not take (did you mean 'img'?); it needs 'img', "
        "which op_kwargs does not give; its parameters: img",
        "(run with --debug for the full traceback)",
    ]
    assert _chunk_files(home) == []
    code, err = _zetta(capsys, monkeypatch, "--debug", "run", str(spec))
    assert code == 2
    assert err[0] == "Traceback (most recent call last):" and err[-1].startswith(
        "Error: at `target.op_kwargs`: "
    )


@pytest.mark.slow
def test_a_misspelled_argument_is_one_short_line_and_the_signature_only_with_debug(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.cue"
    spec.write_text(_spec("lambda src: src", "processing_crop_pad: [0, 0, 0]"))
    code, err = _zetta(capsys, monkeypatch, "run", str(spec))
    assert code == 2
    assert err == [
        "Error: at `target.processing_crop_pad`: 'build_subchunkable_apply_flow' has no argument "
        "'processing_crop_pad'; did you mean 'processing_crop_pads'? (close: processing_crop_pads, "
        "roi_crop_pad, processing_blend_pads; `zetta show-registry build_subchunkable_apply_flow` "
        "lists all its arguments)",
        "(run with --debug for the full traceback)",
    ]
    code, err = _zetta(capsys, monkeypatch, "--debug", "run", str(spec))
    assert code == 2
    assert err[-1].startswith(
        "signature: build_subchunkable_apply_flow(dst: 'VolumetricLayer | None', "
    )


@pytest.mark.slow
def test_a_failing_task_is_named_by_region_and_level_with_the_users_frame_first(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec.cue"
    spec.write_text(_spec("lambda src: src[0, 0, 0, 5]"))
    code, err = _zetta(capsys, monkeypatch, "run", str(spec), "--fresh")
    assert code == 1
    start = err.index("Error: the run failed.")
    assert err[start + 2].startswith("task lambda (id lambda-")
    assert err[start + 2].endswith(
        "failed after 1 attempt(s) with IndexError: index 5 is out of bounds for dimension 3 with "
        "size 1"
    )
    assert err[start + 3 : start + 9] == [
        REGION,
        "  your code (most recent call last):",
        '    File "<lambda_str: lambda src: src[0, 0, 0, 5]>", line 1, in <lambda>',
        "      lambda src: src[0, 0, 0, 5]",
        "                  ~~~^^^^^^^^^^^^",
        "  (9 frame(s) of zetta_utils and libraries hidden: --debug shows them)",
    ]
    assert not any("zetta_utils/mazepa" in line for line in err)
    code, err = _zetta(capsys, monkeypatch, "--debug", "run", str(spec), "--fresh")
    assert code == 1
    assert REGION in err
    assert any("zetta_utils/mazepa/tasks.py" in line for line in err)  # the whole traceback


REMOTE_TRACEBACK = """Traceback (most recent call last):
  File "/app/zetta_utils/mazepa/tasks.py", line 103, in __call__
    value = self.fn(*self.args, **self.kwargs)
  File "/home/me/zetta_utils/my_ops.py", line 7, in normalize
    return torch.nn.functional.conv2d(src, w)
  File "/usr/local/lib/python3.11/site-packages/torch/nn/functional.py", line 9, in conv2d
    raise RuntimeError("shape")
RuntimeError: shape
"""


def test_frames_are_told_apart_by_their_file_names_from_any_machine() -> None:
    assert is_internal_file("/app/zetta_utils/mazepa/tasks.py")
    assert is_internal_file("/usr/lib/python3.11/concurrent/futures/thread.py")
    assert is_internal_file("/venv/lib/python3.11/site-packages/numpy/core/fromnumeric.py")
    assert is_internal_file("<frozen importlib._bootstrap>")
    assert not is_internal_file(
        "/home/me/zetta_utils/my_ops.py"
    )  # a user's repository of that name
    assert not is_internal_file("<lambda_str: lambda src: src>")
    short = shorten_traceback(REMOTE_TRACEBACK)
    assert short.render() == (
        "  your code (most recent call last):\n"
        '    File "/home/me/zetta_utils/my_ops.py", line 7, in normalize\n'
        "      return torch.nn.functional.conv2d(src, w)\n"
        "  (2 frame(s) of zetta_utils and libraries hidden: --debug shows them)"
    )
    internal_only = REMOTE_TRACEBACK.replace(
        "/home/me/zetta_utils/my_ops.py", "/app/zetta_utils/layer/layer.py"
    )
    assert shorten_traceback(internal_only).render() == (
        "  raised at:\n"
        '    File "/usr/local/lib/python3.11/site-packages/torch/nn/functional.py", line 9, in '
        "conv2d\n"
        '      raise RuntimeError("shape")\n'
        "  (2 frame(s) of zetta_utils and libraries hidden: --debug shows them)"
    )


def test_a_spec_lambda_run_by_a_worker_still_shows_its_text_and_line() -> None:
    from zetta_utils import builder, mazepa
    from zetta_utils.mazepa.serialization import deserialize_task, serialize_task

    fn = builder.build({"@type": "lambda", "lambda_str": "lambda x: x[5]"})
    task = mazepa.taskable_operation(fn).make_task([1, 2])
    outcome = deserialize_task(serialize_task(task))()  # as a worker process runs it
    assert outcome.exception_type == "IndexError"
    assert outcome.traceback is not None
    assert shorten_traceback(outcome.traceback).frames == (
        'File "<lambda_str: lambda x: x[5]>", line 1, in <lambda>\n  lambda x: x[5]\n            '
        "~^^^",
    )
