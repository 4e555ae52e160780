"""Predict: sequence decoders (greedy and beam search in ``search.py``), classifier and segmentation heads.

The roles are in ``base.py``; each other module holds one component, registered with ``@PREDICT.register``."""
