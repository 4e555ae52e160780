"""Run a trained EEAP model: ``python predict.py CHECKPOINT [--input FILE|-] [--beam N] [--plot-attention DIR]``."""

import sys

from eeap.serving.inference import main

if __name__ == "__main__":
    sys.exit(main())
