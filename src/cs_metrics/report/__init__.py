"""The Monday HTML report: context, tables, advice, charts, filters and templates."""
