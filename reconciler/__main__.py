"""``python -m reconciler``: the same as the ``reconciler`` console script."""

import sys

from .cli import main

sys.exit(main())
