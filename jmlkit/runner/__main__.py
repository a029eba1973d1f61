"""``python -m jmlkit.runner``: the same as ``python -m jmlkit run``."""
import sys

from jmlkit.runner.cli import main_run

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_run())
