"""Evaluation: face verification on labelled photos (and, later, generated-image metrics)."""
