"""Layers: indexable, writable views of stored data with read/write/index processors."""
