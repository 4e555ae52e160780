"""Task modules and their data; importing registers them."""

from tasks import captioning, classification, segmentation, translation

__all__ = ["captioning", "classification", "segmentation", "translation"]
