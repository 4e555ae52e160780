"""EEAP: attention models from Embed, Encode, Attend and Predict parts, composed in YAML, trained with Lightning.

Importing ``eeap`` registers every component and task, so a config can name any of them.
"""

from eeap import attend, embed, encode, predict  # noqa: F401
from eeap.registry import ATTEND, DATA, EMBED, ENCODE, PREDICT, TASK, Registry

import tasks  # noqa: E402,F401  (registers the task modules and their data)

__version__ = "0.1.0"
__all__ = ["ATTEND", "DATA", "EMBED", "ENCODE", "PREDICT", "TASK", "Registry"]
