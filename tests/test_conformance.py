"""The shared worked cases of SPEC.md, run against the installed entry point."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from paths import ROOT

SHARED = ROOT / ".." / "shared"
CONFORMANCE = SHARED / "conformance"
RUNNER = CONFORMANCE / "run.py"
CMD = f"{shlex.quote(sys.executable)} -m cs_metrics"

pytestmark = pytest.mark.skipif(
    not RUNNER.exists(), reason="../shared/conformance is not present next to the repo"
)


def case_names() -> list[str]:
    cases = CONFORMANCE / "cases"
    if not cases.is_dir():
        return []
    return sorted(p.name for p in cases.iterdir() if (p / "case.json").exists())


@pytest.fixture(scope="module")
def runner_output() -> subprocess.CompletedProcess[str]:
    """One run of run.py over every case (each case is one subprocess of the entry point)."""
    return subprocess.run(
        [sys.executable, str(RUNNER), "--cmd", CMD],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def case_report(stdout: str, case: str) -> list[str]:
    """The runner's lines about one case: its ok/FAIL line and the problem lines under it."""
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line[5:] == case:
            problems = []
            for more in lines[i + 1 :]:
                if not more.startswith("     "):
                    break
                problems.append(more.strip())
            return [line, *problems]
    return []


def test_runner_passes_every_case(runner_output: subprocess.CompletedProcess[str]) -> None:
    """run.py over all cases exits 0."""
    out = runner_output
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(case_names())} passed, 0 failed" in out.stdout


@pytest.mark.parametrize("case", case_names())
def test_conformance_case(case: str, runner_output: subprocess.CompletedProcess[str]) -> None:
    """Each worked case matches its expected fields (a failure names the case and field)."""
    report = case_report(runner_output.stdout, case)
    assert report, f"runner printed nothing for {case}: {runner_output.stderr[-500:]}"
    assert report[0].startswith("ok"), "\n".join(report)
