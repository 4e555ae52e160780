"""Task modules and their data; importing registers them."""

from tasks import classification, segmentation, translation

__all__ = ["classification", "segmentation", "translation"]
