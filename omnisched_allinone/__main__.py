"""`python -m omnisched_allinone` is the `omnisched` command."""

from omnisched_allinone.cli import main

main()
