"""Why rows are set aside or warned about: reason codes, warning codes, row counts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a row was quarantined (machine-readable code)."""

    MALFORMED_ROW = "malformed_row"
    MISSING_VALUE = "missing_value"
    BAD_TIMESTAMP = "bad_timestamp"
    LOCAL_TIME_GAP = "nonexistent_or_ambiguous_local_time"
    UNKNOWN_ROLE = "unknown_role"
    BAD_RATING = "bad_rating"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    END_BEFORE_START = "end_before_start"
    ID_SCIENTIFIC_NOTATION = "id_scientific_notation"
    """Only with `reject_mangled_ids`: by default such rows are used, with a warning."""
    ID_FLOAT_SUFFIX = "id_float_suffix"
    """Only with `reject_mangled_ids`: by default such rows are used, with a warning."""


class Warn(StrEnum):
    """Why rows that are used anyway deserve a look (machine-readable code of a warning)."""

    ID_SCIENTIFIC_NOTATION = "id_scientific_notation"
    ID_FLOAT_SUFFIX = "id_float_suffix"
    ID_COLLAPSED_DUPLICATES = "id_collapsed_duplicates"
    TIMEZONE_DEFAULTED = "timezone_defaulted"
    ROWS_NOT_READ = "rows_not_read"


class InputWarning(str):
    """A warning line as printed, that also carries its table, code and number of rows."""

    table: str
    code: str
    rows: int

    def __new__(cls, text: str, *, table: str, code: str, rows: int = 0) -> InputWarning:
        """The warning `text` about `rows` rows of `table`, with its `code`."""
        line = super().__new__(cls, text)
        line.table, line.code, line.rows = table, code, rows
        return line


ID_COLUMNS = ("shop_id", "conversation_id", "message_id")


SCIENTIFIC_ID = r"[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+"
"""An id a spreadsheet showed in scientific notation (`1.79E+18`): its last digits are lost."""


FLOAT_ID = r"[0-9]+\.0+"
"""An id a spreadsheet turned into a decimal number (`3.0` for `3`)."""


AS_TEXT = "re-export with the column formatted as text"


MANGLED_IDS: tuple[tuple[str, Reason, Warn, str], ...] = (
    (
        SCIENTIFIC_ID,
        Reason.ID_SCIENTIFIC_NOTATION,
        Warn.ID_SCIENTIFIC_NOTATION,
        "{column} is in scientific notation: a spreadsheet turned a long id into scientific "
        f"notation and lost its last digits; {AS_TEXT}",
    ),
    (
        FLOAT_ID,
        Reason.ID_FLOAT_SUFFIX,
        Warn.ID_FLOAT_SUFFIX,
        f"{{column}} ends in .0: a spreadsheet turned an id into a decimal number; {AS_TEXT}",
    ),
)


@dataclass(frozen=True)
class InputCounts:
    """Rows of one table: every row read is used, quarantined or a duplicate."""

    rows_read: int
    rows_used: int
    rows_quarantined: int
    rows_duplicate: int

    def as_dict(self) -> dict[str, int]:
        """The four counts under their SPEC names."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
        }
