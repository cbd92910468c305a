"""The command-line shell around the repcheck library (Typer + rich)."""
