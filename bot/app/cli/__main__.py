"""`python -m bot.app.cli`: the same command line as the `incident-brief` script."""

from bot.app.cli import main

main()
