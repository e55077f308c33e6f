"""The worker image (``Dockerfile``) and ``scripts/build_image.py``. No image can be built or pulled
here: the Dockerfile is read with a real Dockerfile parser and checked against
``scripts/setup.sh``, its entry point runs in the project's virtualenv, and the script's docker
command lines are checked (``--dry-run``, and a stand-in ``docker`` that records its calls)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "build_image.py"

# pip options that take a value (the value is not a requirement); -e's value is one
_VALUE_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "-c",
    "--constraint",
    "-f",
    "--find-links",
}


def _requirements(command: str) -> list[str]:
    """The requirements of every ``pip install`` in a shell command line."""
    found: list[str] = []
    for part in command.replace("&&", ";").split(";"):
        words = shlex.split(part)
        for i, word in enumerate(words):
            if word.endswith("pip") and words[i + 1 : i + 2] == ["install"]:
                rest = iter(words[i + 2 :])
                for arg in rest:
                    if arg in _VALUE_OPTIONS:
                        next(rest)
                    elif arg in ("-e", "--editable"):
                        found.append(next(rest))
                    elif not arg.startswith("-"):
                        found.append(arg)
                break
    return found


def _dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return parser


def _docker_requirements(parser: DockerfileParser) -> list[str]:
    args = {**parser.args}
    found: list[str] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "ARG":
            name, _, default = instruction["value"].partition("=")
            args.setdefault(name.strip(), default.strip())
        if instruction["instruction"] == "RUN":
            value = instruction["value"]
            for name, default in args.items():
                value = value.replace("${" + name + "}", default)
            found += _requirements(value)
    return found


def test_the_image_installs_exactly_what_setup_sh_installs() -> None:
    setup = [
        req
        for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines()
        if "pip install" in line and not line.lstrip().startswith("#")
        for req in _requirements(line)
    ]
    assert (
        "pip" in setup
        and any(r.startswith("torch==") for r in setup)
        and any(r.startswith(".[") for r in setup)
    )
    parser = _dockerfile()
    assert _docker_requirements(parser) == setup  # same requirements, same order (torch first)
    run_lines = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
    torch_line = next(line for line in run_lines if "torch==" in line)
    # the CPU build by default; a build argument picks a CUDA one
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in torch_line
    assert "TORCH_VARIANT=cpu" in [
        i["value"] for i in parser.structure if i["instruction"] == "ARG"
    ]


def test_the_image_is_the_projects_python_with_the_package_and_zetta_worker_as_entrypoint() -> None:
    parser = _dockerfile()
    assert parser.baseimage.startswith("python:") and parser.baseimage.endswith("-slim")
    python = next(
        i["value"]
        for i in parser.structure
        if i["instruction"] == "ARG" and i["value"].startswith("PYTHON_VERSION=")
    )
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'requires-python = ">={python.split("=")[1]}"' in pyproject
    copied = [
        w for i in parser.structure if i["instruction"] == "COPY" for w in i["value"].split()[:-1]
    ]
    assert {"pyproject.toml", "setup.py", "README.md", "zetta_utils"} <= set(copied)
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not ignored & set(copied)
    entrypoint = json.loads(
        next(i["value"] for i in parser.structure if i["instruction"] == "ENTRYPOINT")
    )
    assert entrypoint == ["zetta", "worker"]

    # the entry point, as installed in a virtualenv by the same pip install
    exe = Path(sys.executable).parent / entrypoint[0]
    r = subprocess.run(
        [str(exe), *entrypoint[1:], "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "--join" in r.stdout and "--queue" in r.stdout


def _script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60
    )


def _commands(stdout: str) -> list[list[str]]:
    return [
        shlex.split(line.split(": ", 1)[1])
        for line in stdout.splitlines()
        if line.startswith(("would run:", "running:"))
    ]


def test_build_image_dry_run_prints_the_guides_build_and_push() -> None:
    r = _script("--project", "my-proj", "--tag", "v1", "--dry-run")
    assert r.returncode == 0, r.stderr
    build, push = _commands(r.stdout)
    image = "us.gcr.io/my-proj/zetta_utils:v1"
    assert build[:4] == ["docker", "build", "-t", image]
    assert build[build.index("-f") + 1] == str(ROOT / "Dockerfile") and build[-1] == str(ROOT)
    assert "TORCH_VARIANT=cpu" in build and "PYTHON_VERSION=3.11" in build
    assert push == ["docker", "push", image]
    assert r.stdout.splitlines()[-1] == f'worker_image: "{image}"'

    r = _script("--project", "my-proj", "-t", "v1-gpu", "--cuda", "--no-push", "--dry-run")
    assert r.returncode == 0, r.stderr
    (build,) = _commands(r.stdout)
    assert "TORCH_VARIANT=cu126" in build and "us.gcr.io/my-proj/zetta_utils:v1-gpu" in build
    r = _script(
        "--project", "p", "--tag", "t", "--cuda", "cu118", "--registry", "gcr.io", "--dry-run"
    )
    assert (
        "TORCH_VARIANT=cu118" in _commands(r.stdout)[0]
        and 'worker_image: "gcr.io/p/zetta_utils:t"' in r.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "p"], "--tag"),
        (["--tag", "a b"], "--tag"),
        (["--tag", "t", "--project", "a/b"], "--project"),
        (["--tag", "t", "--python", "3.9"], "--python"),
        (["--tag", "t", "--cuda", "gpu"], "--cuda"),
        (["--tag", "t", "--mode", "training"], "--mode"),
    ],
)
def test_build_image_rejects_bad_options(args: list[str], message: str) -> None:
    r = _script(*args, "--dry-run")
    assert r.returncode == 2 and message in r.stderr
    assert "would run" not in r.stdout


def test_build_image_runs_docker_and_stops_when_the_build_fails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    docker.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" != build ] || [ ! -e {tmp_path}/fail ]\n'
    )
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    r = _script("--project", "p", "--tag", "t", env=env)
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["build", "push"]
    assert 'worker_image: "us.gcr.io/p/zetta_utils:t"' in r.stdout

    calls.unlink()
    (tmp_path / "fail").touch()
    r = _script("--project", "p", "--tag", "t", env=env)
    assert r.returncode != 0 and "build failed" in r.stderr
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["build"]
    assert "worker_image" not in r.stdout

    r = _script("--project", "p", "--tag", "t", env={**os.environ, "PATH": str(tmp_path / "empty")})
    assert r.returncode == 2 and "docker CLI is not on PATH" in r.stderr
