"""CardFlow serving."""
