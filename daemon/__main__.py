"""`python -m daemon` runs the `vedette` command line."""

from daemon.cli import main

main()
