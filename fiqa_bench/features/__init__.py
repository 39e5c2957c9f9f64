"""Features computed from face crops at inference time (no learning, no torch): what learned baselines score."""
