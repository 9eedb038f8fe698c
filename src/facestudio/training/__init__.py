"""Training by reconstruction on accelerate: configuration, data, the loop, checkpoints, export."""
