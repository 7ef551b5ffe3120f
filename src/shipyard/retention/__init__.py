"""Retention: the prediction log, archived artifacts and stray runs, shrunk by rules and never past a hold."""
