"""Vedette: a news-monitoring daemon that watches feeds and warns once per story."""

__version__ = "0.1.0"
