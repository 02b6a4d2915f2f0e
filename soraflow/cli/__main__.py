"""``python -m soraflow.cli``: the command line, as the console script runs it."""

import sys

from . import app

sys.exit(app())
