"""CardFlow mlproject."""
