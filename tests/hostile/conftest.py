"""The hostile suite runs the CLI end to end, like tests/cli."""

from tests.cli.conftest import project

__all__ = ["project"]
