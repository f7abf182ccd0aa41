"""Behaviour-cloning training: config, optimiser, evaluation, the loop, and per-character runs."""
