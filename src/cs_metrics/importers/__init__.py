"""Importers: other sources turned into a cs-metrics data folder (docs/import.md)."""
