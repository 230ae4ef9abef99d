"""The command line: `main` (the entry point) and `app` (the commands)."""
