"""`python -m shipdet` is the `shipdet` command."""

from shipdet.cli import main

main()
