"""Labelled ID-document corpora: the synthetic generator and loaders for real datasets."""
