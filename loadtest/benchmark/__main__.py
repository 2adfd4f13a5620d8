"""``python -m loadtest.benchmark``."""

import sys

from loadtest.benchmark.cli import main

sys.exit(main())
