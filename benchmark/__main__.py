"""``python -m benchmark``."""

import sys

from benchmark.cli import main

if __name__ == "__main__":  # not when a worker process imports it
    sys.exit(main())
