"""CardFlow analysis."""
