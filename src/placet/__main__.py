"""``python -m placet`` runs the CLI."""

from placet.cli.main import main

main()
