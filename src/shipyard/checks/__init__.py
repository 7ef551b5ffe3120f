"""Checks that turn a model and data into evidence."""
