"""Entities, the stage machine and errors: pure, no I/O."""
