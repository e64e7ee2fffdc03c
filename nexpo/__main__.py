"""``python -m nexpo ...``: the ``nexpo`` command."""

import sys

from nexpo.cli import main

sys.exit(main())
