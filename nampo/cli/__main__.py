"""``python -m nampo.cli``: the ``nampo`` command."""

import sys

from nampo.cli import main

__all__: list[str] = []

sys.exit(main())
