"""``python -m nexpo.api [--host H] [--port P] [--workers N]``: same as ``nexpo serve``."""

import sys

from .server import main

sys.exit(main())
