"""Play: a trained policy in real time (streaming inference, decode and press, the runners,
replay-driven evaluation)."""
