"""Training data: reading photo sources and preparing reconstruction samples as WebDataset shards."""
