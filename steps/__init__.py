"""CardFlow steps."""
