"""Shared helpers: write small inline tables to a data folder and run the pipeline on it."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import settings

from cs_metrics import output
from cs_metrics.cli.common import parse_cutoff
from cs_metrics.pipeline import Dataset, Evaluation, evaluate, load
from cs_metrics.policy import Policy, load_policy

# Property tests draw the same examples on every run (`make test`, CI), so a result does not
# depend on luck; `make explore` draws new ones (a failure prints how to reproduce it).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

MESSAGES_HEADER = "shop_id,conversation_id,message_id,sender_role,sent_at"
WEEK = ("2026-11-16", "2026-11-22")
"""A Monday..Sunday window used by most tests (no DST change in the zones they use)."""


@pytest.fixture(autouse=True)
def pseudonym_key_file(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's pseudonym key in its own temporary file, never in the real home."""
    path = tmp_path_factory.mktemp("key") / "pseudonym.key"
    monkeypatch.setenv("CS_METRICS_KEY_FILE", str(path))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An empty data folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def write_csv(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """Write an inline CSV table (dedented, leading newline dropped) as NAME.csv."""
    path = folder / f"{name}.csv"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding=encoding)
    return path


def write_jsonl(folder: Path, name: str, lines: list[dict[str, Any] | str]) -> Path:
    """Write JSON Lines: dicts as JSON objects, strings verbatim (to make bad lines)."""
    path = folder / f"{name}.jsonl"
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_parquet(folder: Path, name: str, table: pa.Table) -> Path:
    """Write an Arrow table as NAME.parquet."""
    path = folder / f"{name}.parquet"
    pq.write_table(table, path)
    return path


def run(
    folder: Path,
    start: str = WEEK[0],
    end: str = WEEK[1],
    cutoff: str | None = None,
    shops: list[str] | None = None,
    default_timezone: str | None = None,
    chat_detail: bool = True,
) -> tuple[Dataset, Evaluation]:
    """Load a data folder and evaluate the local days start..end, as `compute` does."""
    import datetime as dt

    policy = load_policy(None, default_timezone=default_timezone)
    cut = parse_cutoff(cutoff, policy.default_timezone)
    dataset = load(folder, policy)
    evaluation = evaluate(
        dataset,
        dt.date.fromisoformat(start),
        dt.date.fromisoformat(end),
        policy,
        cut,
        shops,
        chat_detail=chat_detail,
    )
    return dataset, evaluation


def compute(folder: Path, **kwargs: Any) -> dict[str, Any]:
    """The SPEC 7 document (as parsed JSON) for a data folder."""
    dataset, evaluation = run(folder, **kwargs)
    return json.loads(output.to_json(output.result_document(dataset, evaluation)))


def shop(doc: dict[str, Any], shop_id: str) -> dict[str, Any]:
    """One shop's object from a SPEC 7 document."""
    matches = [s for s in doc["shops"] if s["shop_id"] == shop_id]
    assert len(matches) == 1, f"shop {shop_id} appears {len(matches)} times"
    return matches[0]


def drilldown(folder: Path, **kwargs: Any) -> pd.DataFrame:
    """The per-chat drill-down rows (what `cs-metrics chats` writes)."""
    _, evaluation = run(folder, **kwargs)
    return output.chat_rows(evaluation.chats)


def statuses(folder: Path, **kwargs: Any) -> dict[str, str]:
    """Status of each chat in the window, keyed by its first message_id."""
    rows = drilldown(folder, **kwargs)
    return dict(zip(rows["first_message_id"], rows["status"], strict=True))


def default_policy() -> Policy:
    """The guideline policy."""
    return Policy()
