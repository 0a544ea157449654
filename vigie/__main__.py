"""``python -m vigie``: the same as the ``vigie`` command."""

from vigie.cli import main

main()
