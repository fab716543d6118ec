"""`python -m tuneboard.cli ...`: the same command line as the `tuneboard` script."""

import os

from tuneboard.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")  # for the processes commands start
main()
