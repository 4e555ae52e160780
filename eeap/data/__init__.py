"""Data: the data role and its loaders (``base``), the prepared-data cache (``prepared``), and what a model reads of
its data (``info``, ``text``: tokenizers, ``images``: image files), which a trained model needs without the rest."""
