"""`python -m tuneboard ...`: the same command line as the `tuneboard` script (and as
`python -m tuneboard.cli`)."""

import os

from tuneboard.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")  # for the processes commands start
main()
