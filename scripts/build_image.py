#!/usr/bin/env python3
"""Build and push the worker image of remote runs (the ``Dockerfile`` at the repository root)
with the ``docker`` CLI, then print the ``worker_image`` value to put in the spec.

    python scripts/build_image.py --project PROJECT --tag TAG          # CPU workers
    python scripts/build_image.py --project PROJECT --tag TAG-gpu --cuda   # GPU worker groups
    python scripts/build_image.py --project PROJECT --tag TAG --dry-run    # print the commands only

The image is ``REGISTRY/PROJECT/zetta_utils:TAG`` (registry ``us.gcr.io`` by default, as in the
guide). Pushing needs docker to be logged in to the registry (``gcloud auth configure-docker``).
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CUDA = "cu126"
PYTHON_VERSIONS = ("3.11",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build and push the zetta_utils worker image.")
    parser.add_argument("--project", default="zetta-research", help="registry project (default: zetta-research)")
    parser.add_argument("--tag", "-t", required=True, help="image tag, e.g. v1")
    parser.add_argument("--registry", default="us.gcr.io", help="registry host (default: us.gcr.io)")
    parser.add_argument(
        "--mode",
        "-m",
        default="all",
        choices=["all"],
        help="which dependencies to install; one image holds all of them (default: all)",
    )
    parser.add_argument(
        "--python", "-p", default="3.11", choices=PYTHON_VERSIONS, help="the image's Python (default: 3.11)"
    )
    parser.add_argument(
        "--cuda",
        nargs="?",
        const=DEFAULT_CUDA,
        default=None,
        metavar="VARIANT",
        help=f"a CUDA build of torch for GPU worker groups (default variant: {DEFAULT_CUDA})",
    )
    parser.add_argument("--no-push", action="store_true", help="build only")
    parser.add_argument("--dry-run", action="store_true", help="print the docker commands, run nothing")
    args = parser.parse_args(argv)
    if not args.tag or any(c.isspace() or c in "/:" for c in args.tag):
        parser.error(f"--tag must be a plain tag without spaces, '/' or ':', got {args.tag!r}")
    if not args.project or any(c.isspace() or c in "/:" for c in args.project):
        parser.error(f"--project must be a project id without spaces, '/' or ':', got {args.project!r}")
    if args.cuda is not None and not (args.cuda.startswith("cu") and args.cuda[2:].isdigit()):
        parser.error(f"--cuda must name a CUDA build of torch such as {DEFAULT_CUDA}, got {args.cuda!r}")
    return args


def image_name(args: argparse.Namespace) -> str:
    return f"{args.registry}/{args.project}/zetta_utils:{args.tag}"


def commands(args: argparse.Namespace) -> list[list[str]]:
    """The docker command lines: build, then push (unless --no-push)."""
    image = image_name(args)
    build = [
        "docker",
        "build",
        "-t",
        image,
        "-f",
        str(ROOT / "Dockerfile"),
        "--build-arg",
        f"PYTHON_VERSION={args.python}",
        "--build-arg",
        f"TORCH_VARIANT={args.cuda or 'cpu'}",
        str(ROOT),
    ]
    return [build] if args.no_push else [build, ["docker", "push", image]]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lines = commands(args)
    if not args.dry_run and shutil.which("docker") is None:
        print("error: the docker CLI is not on PATH (install Docker, or use --dry-run)", file=sys.stderr)
        return 2
    for line in lines:
        print(f"{'would run' if args.dry_run else 'running'}: {shlex.join(line)}", flush=True)
        if not args.dry_run:
            code = subprocess.run(line, check=False).returncode
            if code != 0:
                print(f"error: {line[1]} failed (exit {code})", file=sys.stderr)
                return code
    print(f'worker_image: "{image_name(args)}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
