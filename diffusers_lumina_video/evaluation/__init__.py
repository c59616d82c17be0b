"""Measurements on generated media: what a listener or viewer would check, as numbers."""
