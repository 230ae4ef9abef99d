"""Where the tests find the repository's files, wherever in tests/ they live."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository: sample_data/, docs/, jobs/, src/."""
