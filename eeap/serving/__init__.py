"""Using a trained model: ``eeap predict`` (``inference``) and ``eeap export``; neither imports Lightning."""
