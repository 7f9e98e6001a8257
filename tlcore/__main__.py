"""Entry point for `python -m tlcore`."""
from __future__ import annotations

import sys

from tlcore import cli

if __name__ == "__main__":
    sys.exit(cli.main())
