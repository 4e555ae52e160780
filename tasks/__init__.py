"""Task modules and their data; importing registers them."""

from tasks import translation

__all__ = ["translation"]
