"""User docs: the CLI reference matches the live help, and every link stays in the repository."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
EXAMPLE_FILE = re.compile(r"^\*\*`example/([a-z_]+\.csv)`\*\*\n\n```csv\n(.*?)^```", re.M | re.S)
EXAMPLE_RUN = re.compile(
    r"^```sh\n(cs-metrics compute --data example [^\n]*)\n```\n\nprints\n\n```text\n(.*?)^```",
    re.M | re.S,
)


def cli_reference() -> ModuleType:
    """scripts/cli_reference.py, imported by path (scripts/ is not a package)."""
    path = ROOT / "scripts" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def link_targets(markdown: str) -> list[str]:
    """The targets of the inline and reference links of a Markdown text, code left out."""
    prose = CODE_SPAN.sub("", FENCED_BLOCK.sub("", markdown))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def heading_ids(markdown: str) -> set[str]:
    """The ids GitHub gives the headings of a Markdown text (lower case, punctuation dropped)."""
    ids: set[str] = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        unique, n = slug, 0
        while unique in ids:
            n += 1
            unique = f"{slug}-{n}"
        ids.add(unique)
    return ids


def page_id(page: Path) -> str:
    """The page's path from the repository root, as a test id."""
    return page.relative_to(ROOT).as_posix()


def test_link_targets_reads_inline_and_reference_links_but_not_code() -> None:
    """The link finder itself: links in prose count, look-alikes in code do not."""
    text = (
        'See [metrics](docs/metrics.md#4-windows) and ![chart](img/a.svg "A chart").\n'
        "[spec]: ../shared/SPEC.md\n"
        "Use `[x](not/a/link.md)` or\n```\n[y](also/not.md)\n```\n"
    )
    assert link_targets(text) == ["docs/metrics.md#4-windows", "img/a.svg", "../shared/SPEC.md"]


def test_heading_ids_follow_github() -> None:
    """Heading ids as GitHub makes them, so that links to #anchors can be checked."""
    text = "# Title\n## 6a. Data coverage: no `action`\n```\n# not a heading\n```\n## Title\n"
    assert heading_ids(text) == {"title", "6a-data-coverage-no-action", "title-1"}


def test_cli_reference_matches_the_live_help() -> None:
    """docs/cli.md is exactly what scripts/cli_reference.py generates from `--help` now."""
    module = cli_reference()
    current = module.TARGET.read_text(encoding="utf-8") if module.TARGET.exists() else ""
    assert current == module.reference(), (
        "docs/cli.md is stale: the command-line help changed. "
        "Run `python scripts/cli_reference.py` and commit docs/cli.md."
    )


def test_the_worked_example_of_metrics_md_prints_what_the_page_shows(tmp_path: Path) -> None:
    """docs/metrics.md's example folder, run as the page says, prints the page's table."""
    page = (ROOT / "docs" / "metrics.md").read_text("utf-8")
    files = EXAMPLE_FILE.findall(page)
    assert [name for name, _ in files] == [
        "shops.csv",
        "messages.csv",
        "holiday_mode.csv",
        "ratings.csv",
    ]
    folder = tmp_path / "example"
    folder.mkdir()
    for name, text in files:
        (folder / name).write_text(text, encoding="utf-8")
    [(command, expected)] = EXAMPLE_RUN.findall(page)
    argv = [str(folder) if arg == "example" else arg for arg in shlex.split(command)[1:]]
    result = CliRunner().invoke(cli_reference().typer_app(), argv)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected, (
        "docs/metrics.md shows another output for its example than the command prints now"
    )


def test_readme_links_the_metric_definitions_and_the_cli_reference() -> None:
    """A user who clones the repository finds the definitions and the reference from the README."""
    targets = {target.split("#")[0] for target in link_targets(PAGES[0].read_text("utf-8"))}
    assert {"docs/metrics.md", "docs/cli.md"} <= targets


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_no_link_sends_users_outside_the_repository_for_definitions(page: Path) -> None:
    """No link into ../shared, which a clone lacks: docs/metrics.md holds the definitions."""
    outside = [
        target
        for target in link_targets(page.read_text("utf-8"))
        if "../shared" in target or "shared/SPEC" in target
    ]
    assert outside == [], f"{page_id(page)} links outside the repository: {outside}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_points_to_a_file_in_the_repository(page: Path) -> None:
    """Relative links name a file inside the repository, and a heading there when they say #..."""
    broken = []
    for target in link_targets(page.read_text("utf-8")):
        path, _, fragment = target.partition("#")
        if EXTERNAL.match(path):
            continue
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
            continue
        headings = heading_ids(resolved.read_text("utf-8")) if resolved.suffix == ".md" else None
        if fragment and headings is not None and fragment not in headings:
            broken.append(target)
    assert broken == [], f"{page_id(page)} has links to nothing in the repository: {broken}"
