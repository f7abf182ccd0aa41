"""mmlib: reproducible Super Smash Bros. Melee AI research from Slippi replays.

Subpackages follow the data's journey: `data` (ingest, ids). `import mmlib` stays light: heavy
dependencies (peppi, libmelee, torch) are imported by the modules that use them.
"""

__version__ = "0.1.0"
