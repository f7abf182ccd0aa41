"""From .slp files to clean columnar games: sources, parsing, decoding, ids, the ingest."""
