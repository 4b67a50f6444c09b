"""``python -m nampo.cli``: the ``nampo`` command."""

import sys

from nampo.cli import main

sys.exit(main())
