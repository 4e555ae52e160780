"""Task modules and their data; importing registers them."""

from tasks import classification, translation

__all__ = ["classification", "translation"]
