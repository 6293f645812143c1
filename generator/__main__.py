"""`python -m generator` runs the shipforge command line."""

from generator.cli import main

main()
