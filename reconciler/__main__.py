"""``python -m reconciler``: the same as the ``reconciler`` console script."""

from .cli import run

run()
