"""The command line: typer apps, one module per command group. Only this package imports typer or rich."""
