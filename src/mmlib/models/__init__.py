"""Models: the behaviour-cloning transformer (`bc`) with its config (`config`) and attention."""
