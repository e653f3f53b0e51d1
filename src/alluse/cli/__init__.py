"""The `alluse` command line (Typer + Rich)."""
