"""`python -m shipyard`: the command line, for a process that has the interpreter but not the script."""

from shipyard.cli import main

main()
