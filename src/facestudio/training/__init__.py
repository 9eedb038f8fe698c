"""Training on accelerate: `config` (the settings), `objectives` (what is trained and its loss),
`run` (the run folder: start, checkpoints, export), `loop` (`train()`), `ema`, `log`."""
