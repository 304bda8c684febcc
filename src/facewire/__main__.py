"""``python -m facewire``: the same command line as the ``facewire`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
