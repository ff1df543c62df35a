"""CardFlow registry."""
