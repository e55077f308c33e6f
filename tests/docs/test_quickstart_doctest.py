"""docs/quickstart.md: the guide's Python examples run as doctests on the demo volume, and its
spec listings are the files in specs/examples."""

from __future__ import annotations

import doctest
import io
import re
from pathlib import Path

import pytest

from zetta_utils import builder

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"

_SIZE = re.compile(r"torch\.Size\(\[([^\]]*)\]\)")
_SCALAR = re.compile(r"tensor\((-?\d+(?:\.\d*)?(?:e[-+]?\d+)?)(?:, dtype=torch\.\w+)?\)")
_NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?")


class GuideOutputChecker(doctest.OutputChecker):
    """The guide prints shapes as tuples and reductions as plain numbers; torch prints
    ``torch.Size([...])`` and ``tensor(x)`` (x rounded to 4 decimals). A torch size matches the
    same tuple, and a scalar tensor matches a number that rounds to what torch printed."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if super().check_output(want, got, optionflags):
            return True
        as_tuple = _SIZE.sub(lambda m: f"({m.group(1)})", got)
        if super().check_output(want, as_tuple, optionflags):
            return True
        scalar = _SCALAR.fullmatch(got.strip())
        if scalar is None or not _NUMBER.fullmatch(want.strip()):
            return False
        printed = scalar.group(1)
        decimals = len(printed.split(".")[1]) if "." in printed else 0
        return abs(float(printed) - float(want)) <= 0.5 * 10.0**-decimals + 1e-12


def test_torch_outputs_match_guide_outputs_only_when_equal() -> None:
    checker = GuideOutputChecker()
    assert checker.check_output("(1, 100, 100, 1)\n", "torch.Size([1, 100, 100, 1])\n", 0)
    assert not checker.check_output("(1, 100, 100, 1)\n", "torch.Size([1, 100, 100, 2])\n", 0)
    assert checker.check_output("-3.460366\n", "tensor(-3.4604)\n", 0)
    assert not checker.check_output("-3.460366\n", "tensor(-3.4605)\n", 0)
    assert checker.check_output("0.0\n", "tensor(0.)\n", 0)
    assert not checker.check_output("0.0\n", "tensor(0.0001)\n", 0)
    assert not checker.check_output("some_value\n", "tensor(0.)\n", 0)


def run_quickstart() -> tuple[doctest.TestResults, str]:
    text = QUICKSTART.read_text(encoding="utf-8")
    # No __name__ in the globals: classes defined in the examples print as <class 'Name'>, as
    # in the guide.
    test = doctest.DocTestParser().get_doctest(text, {}, "quickstart", str(QUICKSTART), 0)
    assert len(test.examples) > 50, "docs/quickstart.md lost its examples"
    out = io.StringIO()
    runner = doctest.DocTestRunner(checker=GuideOutputChecker(), optionflags=doctest.REPORT_NDIFF)
    try:
        results = runner.run(test, out=out.write)
    finally:
        for name in ("ThresholdProcessor", "echo"):
            builder.unregister(name)
    return results, out.getvalue()


@pytest.mark.slow
def test_quickstart_examples_run_on_the_demo(home: Path) -> None:
    results, report = run_quickstart()
    assert results.failed == 0, report
    # The write example created its volume in this HOME and wrote the chunk of ones.
    written = home / "zetta_utils_temp" / "temp"
    assert (written / "info").is_file()
    assert (written / "8_8_40" / "0-128_0-128_0-1").is_file()


def test_spec_listings_are_the_spec_files() -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    listings = re.findall(
        r"File: `(specs/examples/[^`]+)`\n\n```(?:cue|json)\n(.*?)```\n", text, re.S
    )
    names = [name for name, _ in listings]
    on_disk = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "specs" / "examples").iterdir()
        if p.name != "hello.json"
    )
    assert sorted(names) == on_disk
    for name, body in listings:
        assert body == (ROOT / name).read_text(encoding="utf-8"), f"{name} differs from its listing"


def test_quickstart_uses_only_local_paths() -> None:
    text = QUICKSTART.read_text(encoding="utf-8")
    table_free = "\n".join(line for line in text.splitlines() if not line.startswith("|"))
    assert "storage.googleapis.com" not in table_free
    for spec in (ROOT / "specs" / "examples").glob("*.*"):
        assert "storage.googleapis.com" not in spec.read_text(encoding="utf-8"), spec
