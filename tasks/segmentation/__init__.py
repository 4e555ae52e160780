"""Segmentation: Attention U-Net on the paper's conv encoder or any segmentation-models-pytorch encoder."""
