"""``python -m api [options]`` (``--help`` lists them): same as ``nexpo serve``."""

import sys

from api.server import main

sys.exit(main())
