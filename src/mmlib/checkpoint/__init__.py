"""Checkpoints: the published per-character directory layout, read and written (SPEC 4.7)."""
