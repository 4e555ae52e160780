"""``python -m eeap``: the ``eeap`` command (``eeap.cli``), e.g. under ``torchrun -m eeap train CONFIG``."""

import sys

from eeap.cli import main

if __name__ == "__main__":
    sys.exit(main())
