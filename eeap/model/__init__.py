"""The model side: the task role (``task``: a plain ``nn.Module``), the sequence-to-sequence core (``seq2seq``),
loading a trained model from a checkpoint (``checkpoints``), its figures, metrics and predict's options. Nothing here
imports Lightning."""
