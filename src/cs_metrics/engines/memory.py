"""The in-memory engine: every good message in one pandas frame in this process (one group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import pandas as pd

from cs_metrics.duplicates import table_shop_codes
from cs_metrics.engines import (
    CHECK_THREADS,
    CheckedMessages,
    MessageSource,
    checked_set_aside,
    without_good_rows,
)
from cs_metrics.readers import map_blocks
from cs_metrics.validate import AS_CATEGORIES

T = TypeVar("T")


@dataclass(frozen=True)
class FrameGroups:
    """All the messages as one group, one frame held here."""

    frame: pd.DataFrame

    def map(
        self, func: Callable[[pd.DataFrame], T], columns: Sequence[str] | None = None
    ) -> list[T]:
        """`func` of the one group (all its columns: held here, none costs a read)."""
        return [func(self.frame)]

    def transform(
        self, func: Callable[[pd.DataFrame], pd.DataFrame], needs: Sequence[str] | None = None
    ) -> FrameGroups:
        """The one group replaced by `func` of it."""
        return FrameGroups(func(self.frame))

    def settled(self) -> FrameGroups:
        """The group itself (transforms are applied at once)."""
        return self

    def held(self) -> pd.DataFrame:
        """Every message (this engine holds them all)."""
        return self.frame

    def empty(self) -> pd.DataFrame:
        """No message, with the columns and types of the frame."""
        return self.frame.iloc[:0]


class MemoryEngine:
    """Reads the messages here, block by block, checks each and keeps the good rows in memory."""

    name = "pandas"

    def checked_messages(self, source: MessageSource) -> CheckedMessages:
        """The messages checked block by block as they are read: the raw text is never all held,
        nor the bad rows (set aside on disk as each block is checked)."""
        check = partial(checked_set_aside, check=source.check, spill=source.spill, shop_codes=True)
        checked = map_blocks(
            "messages",
            source.path,
            check,
            source.columns,
            source.row_groups,
            CHECK_THREADS,
            categories=AS_CATEGORIES,
        )
        good = table_shop_codes([block.rows.good for block in checked])
        frame = (
            pd.concat(good, ignore_index=True) if len(good) != 1 else good[0].reset_index(drop=True)
        )
        return CheckedMessages([without_good_rows(block) for block in checked], FrameGroups(frame))
