"""The serving gateway."""
