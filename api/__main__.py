"""``python -m api [--host H] [--port P] [--workers N]``: same as ``nexpo serve``."""

import sys

from api.server import main

sys.exit(main())
