"""``python -m backdrop`` is the ``backdrop`` command."""

import sys

from backdrop.cli import main

sys.exit(main())
