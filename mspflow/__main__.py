"""``python -m mspflow`` runs the command line."""

from mspflow.cli import main

main(prog_name="mspflow")
