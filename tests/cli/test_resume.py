"""``zetta run`` resumes a stopped run: kill -9 of the driver at points chosen by progress (a
number of ids on record in the run's checkpoint), then the same command again, until the run
completes; the output must be byte-identical to an uninterrupted run's.

The kill point: the spec's op calls a probe module (on PYTHONPATH, written by the test) that, once
the checkpoint holds at least N ids, stops the driver with SIGSTOP (from inside a task: the driver
itself serially, a worker process with ``-p 2``). The test waits for the driver to be stopped, then
kills it with SIGKILL. No timing is guessed anywhere.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zetta_utils.cli.resume import ResumeState, spec_key
from zetta_utils.demo.testing import make_home

DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)

PROBE = """
import glob, json, os, signal

def gate(src):
    ctl = os.environ.get("RESUME_PROBE")
    if ctl and os.path.exists(ctl):
        with open(ctl) as f:
            c = json.load(f)
        ckpts = glob.glob(os.path.join(c["resume_dir"], "*", "checkpoint"))
        n = 0
        for path in ckpts:
            with open(path, "rb") as f:
                n += sum(1 for line in f if line.endswith(b"\\n"))
        if n >= c["after"]:
            try:
                os.close(os.open(c["fired"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return src
            os.kill(c["driver"], signal.SIGSTOP)
    return src
"""


def _spec() -> dict[str, object]:
    src = "file://~/.zetta_utils/demo/fafb_v15/img_norm"
    return {
        "@type": "mazepa.execute",
        # one task per message to a worker, whose outcome comes back when it (and its writes)
        # finished: ids go on record while the run goes on, not a whole batch of tasks at once
        # (with batches sized from measured durations a worker could run every task left before
        # any outcome reached the checkpoint, and no kill point would be reached in time)
        "batch_size": 1,
        "target": {
            "@type": "build_subchunkable_apply_flow",
            "bbox": {
                "@type": "BBox3D.from_coords",
                "start_coord": [29696, 16384, 2000],
                "end_coord": [29696 + 512, 16384 + 512, 2003],
                "resolution": [16, 16, 40],
            },
            "dst_resolution": [16, 16, 40],
            "processing_chunk_sizes": [[128, 128, 1], [64, 64, 1]],
            "processing_crop_pads": [[16, 16, 0], [8, 8, 0]],
            "processing_blend_pads": [[16, 16, 0], [8, 8, 0]],
            "processing_blend_modes": ["linear", "quadratic"],
            "max_reduction_chunk_sizes": [256, 256, 1],
            "level_intermediaries_dirs": [
                "file://~/.zetta_utils/tmp/",
                "file://~/.zetta_utils/tmp/",
            ],
            "fn": {
                "@type": "lambda",
                "lambda_str": "lambda src: __import__('resume_probe').gate(src) * 2.0",
            },
            "op_kwargs": {"src": {"@type": "build_cv_layer", "path": src}},
            "dst": {
                "@type": "build_cv_layer",
                "path": "file://~/out",
                "info_reference_path": src,
                "info_chunk_size": [128, 128, 1],
                "on_info_exists": "overwrite",
            },
        },
    }


class Runner:
    def __init__(self, root: Path, name: str, demo_dir: Path, spec_path: Path, probe_dir: Path):
        self.home = make_home(root / name / "home", demo_dir)
        self.resume_dir = root / name / "resume"
        self.ctl = root / name / "probe.json"
        self.spec_path = spec_path
        self.last_stderr = ""
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "ZETTA_RESUME_DIR": str(self.resume_dir),
            "RESUME_PROBE": str(self.ctl),
            "PYTHONPATH": os.pathsep.join([str(probe_dir), str(Path(__file__).parents[2])]),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zetta_utils.cli.main", "run", str(self.spec_path), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )

    def run_and_kill(self, after: int, *args: str, signum: int = signal.SIGKILL) -> int:
        """Start the run, send its driver ``signum`` once ``after`` ids are on record; the ids on
        record when it ended."""
        fired = self.ctl.with_suffix(".fired")
        fired.unlink(missing_ok=True)
        log = self.ctl.with_suffix(".log")
        with open(log, "w") as stderr:
            proc = subprocess.Popen(
                # SIGINT at its default even when the tests run with it ignored (tests/conftest.py)
                [
                    sys.executable,
                    "-c",
                    DEFAULT_SIGINT,
                    "-m",
                    "zetta_utils.cli.main",
                    "run",
                    str(self.spec_path),
                    *args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.env,
            )
        tmp = self.ctl.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "resume_dir": str(self.resume_dir),
                    "after": after,
                    "fired": str(fired),
                    "driver": proc.pid,
                }
            )
        )
        os.replace(tmp, self.ctl)
        try:
            deadline = time.monotonic() + 240  # a hang guard only; never reached when all is well
            while not (fired.exists() and _stopped(proc.pid)):
                if proc.poll() is not None:
                    raise AssertionError(
                        f"the run ended before {after} ids were on record:\n{log.read_text()}"
                    )
                assert time.monotonic() < deadline, "the probe never stopped the driver"
                time.sleep(0.02)
            os.kill(proc.pid, signum)
            if signum != signal.SIGKILL:
                os.kill(proc.pid, signal.SIGCONT)
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(60)
            self.last_stderr = log.read_text()
            self.ctl.unlink(missing_ok=True)
        return _recorded(self)

    def output(self) -> dict[str, bytes]:
        out = self.home / "out"
        return {
            str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
        }


def _recorded(runner: Runner) -> int:
    """The ids on record in ``runner``'s checkpoints."""
    return sum(
        ResumeState(p.parent, None).recorded() for p in runner.resume_dir.glob("*/checkpoint")
    )


def _stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"


@pytest.fixture
def setup(tmp_path: Path, demo_dir: Path) -> tuple[Path, Path, Path, Path]:
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "resume_probe.py").write_text(PROBE)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(_spec()))
    return tmp_path, demo_dir, spec_path, probe_dir


def _summary_counts(stderr: str) -> tuple[int, int]:
    """Tasks done and skipped, from the summary sentence ("Done in 0:00:03: 40 tasks done (...),
    12 skipped (finished by an earlier run), none failed; ...")."""
    line = next(
        line for line in stderr.splitlines() if line.startswith(("Done in ", "Stopped in "))
    )
    done = int(re.search(r"([\d,]+) tasks? done", line)[1].replace(",", ""))  # type: ignore[index]
    skipped = re.search(r"([\d,]+) skipped", line)
    return done, int(skipped[1].replace(",", "")) if skipped else 0


@pytest.mark.slow
@pytest.mark.parametrize("procs", [[], ["-p", "2"]], ids=["serial", "2procs"])
def test_a_run_killed_at_several_points_resumes_to_identical_output(
    setup: tuple[Path, Path, Path, Path], procs: list[str]
) -> None:
    root, demo_dir, spec_path, probe_dir = setup
    reference = Runner(root, "reference", demo_dir, spec_path, probe_dir)
    r = reference.run()
    assert r.returncode == 0, r.stderr
    total, skipped = _summary_counts(r.stderr)
    assert skipped == 0 and total > 40
    assert not any(reference.resume_dir.glob("*/checkpoint")), "a completed run keeps no checkpoint"
    expected = reference.output()
    assert len(expected) > 10

    resumed = Runner(root, "resumed", demo_dir, spec_path, probe_dir)
    recorded = 0
    # A run in one process keeps its intermediaries in memory and records a top-level task only
    # once its pieces are reduced and released: its ids come on record a section late, in steps
    # whose timing depends on how many tasks the serial executor queues at once (from their
    # measured durations), the last ones after its last top-level task (when the probe no longer
    # runs). Its second kill is therefore at the first id the resumed run records, whenever that is
    points = (3, total // 4, total // 2) if procs else (3, 4)
    for after in points:
        at_kill = resumed.run_and_kill(max(after, recorded + 1), *procs)
        assert at_kill >= after and at_kill > recorded
        recorded = at_kill
    assert not (resumed.home / "out").exists() or resumed.output() != expected, (
        "the run was not interrupted"
    )
    r = resumed.run(*procs)
    assert r.returncode == 0, r.stderr
    done, skipped = _summary_counts(r.stderr)
    # (tasks of sub-flows finished earlier are skipped with their flow, uncounted: a serial run
    # may have only reductions and their flows on record when it is killed, see above)
    assert done < total, "the resumed run redid everything"
    assert "resuming:" in r.stderr
    assert skipped == 0 or "skipped (finished by an earlier run)" in r.stderr
    if procs:  # (top-level tasks are recorded as they finish)
        assert skipped > 0
    assert resumed.output() == expected
    assert not any(resumed.resume_dir.glob("*/checkpoint"))
    assert not list((resumed.home / ".zetta_utils" / "tmp").glob("*/*")), (
        "intermediaries left behind"
    )


@pytest.mark.slow
def test_fresh_and_a_changed_spec_start_over_and_the_cancel_message_says_how_to_resume(
    setup: tuple[Path, Path, Path, Path],
) -> None:
    root, demo_dir, spec_path, probe_dir = setup
    runner = Runner(root, "fresh", demo_dir, spec_path, probe_dir)
    runner.run_and_kill(5)
    r = runner.run("--fresh")
    assert r.returncode == 0, r.stderr
    full, skipped = _summary_counts(r.stderr)
    assert skipped == 0 and "resuming:" not in r.stderr

    runner.run_and_kill(5)
    spec = _spec()
    spec["target"]["fn"]["lambda_str"] += " + 0.0"  # type: ignore[index]
    changed = root / "changed.json"
    changed.write_text(json.dumps(spec))
    assert spec_key(spec) != spec_key(_spec())
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(changed)],
        capture_output=True,
        text=True,
        env=runner.env,
    )
    assert r.returncode == 0, r.stderr
    assert _summary_counts(r.stderr)[1] == 0

    # Ctrl-C (SIGINT; not on a terminal: no question asked) says how to resume, once the
    # resumed run recorded an id of its own (see the comment on the kill points above); the run
    # after it does less than a full run (what is on record may be reductions and their flows
    # only, which a run in one process skips uncounted)
    runner.run_and_kill(_recorded(runner) + 1, signum=signal.SIGINT)
    assert "again to resume" in runner.last_stderr and "--fresh" in runner.last_stderr
    r = runner.run()
    assert r.returncode == 0, r.stderr
    assert "resuming:" in r.stderr and _summary_counts(r.stderr)[0] < full


def test_spec_key_ignores_formatting_and_key_order() -> None:
    a = {"@type": "x", "b": [1, 2], "c": {"d": 1, "e": 2}}
    b = {"c": {"e": 2, "d": 1}, "b": [1, 2], "@type": "x"}
    assert spec_key(a) == spec_key(b)
    assert spec_key(a) != spec_key({**a, "b": [2, 1]})


def test_resume_state_locks_forgets_and_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZETTA_RESUME_DIR", str(tmp_path / "resume"))
    spec = {"@type": "mazepa.execute", "target": {"@type": "x"}}
    first = ResumeState.open(spec, "spec.json", fresh=False)
    assert first.active and first.recorded() == 0 and first.resume_hint("spec.json") is None
    first.checkpoint.write_text("a\nb\nhalf-writ")  # a line cut short by a crash does not count
    assert first.recorded() == 2
    second = ResumeState.open(spec, "spec.json", fresh=True)
    assert not second.active and first.checkpoint.exists()  # the running one keeps its record
    first.finish(completed=False)  # work left undone: kept
    hint = ResumeState.open(spec, "spec.json", fresh=False)
    assert hint.recorded() == 2 and "zetta run spec.json" in (hint.resume_hint("spec.json") or "")
    hint.release()
    fresh = ResumeState.open(spec, "spec.json", fresh=True)
    assert fresh.active and fresh.recorded() == 0
    fresh.finish(completed=True)
    assert not fresh.folder.exists()

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("ZETTA_RESUME_DIR", str(tmp_path / "file" / "resume"))  # cannot be a folder
    assert not ResumeState.open(spec, "spec.json", fresh=False).active
