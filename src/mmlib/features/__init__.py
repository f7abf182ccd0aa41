"""Behaviour-cloning features (SPEC 2-3): one path from a game's frames to the model's input.

- `columns`: the old 22-column player schema and the 5 flags, with their source on each parse path.
- `schema`: the columns kept downstream, read from the ECB audit's `audit.json`.
- `transforms`: the six normalisation transforms, forward and inverse.
- `controller`: the 37/9/3/7 controller encoding.
- `raw`: the two adapters (an ingested game, a libmelee `GameState` stream) to raw player columns.
- `build`: the one feature function both adapters feed.
"""
