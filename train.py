"""Train an EEAP model: ``python train.py CONFIG [key=value ...] [--print-config]``."""

import sys

from eeap.training.run import main

if __name__ == "__main__":
    sys.exit(main())
