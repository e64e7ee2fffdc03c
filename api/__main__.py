"""``python -m nexpo.api [options]`` (``--help`` lists them): same as ``nexpo serve``."""

import sys

from .server import main

sys.exit(main())
