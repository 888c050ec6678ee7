"""Deduplication: exact keys, MinHash LSH, the shuffle and connected components, removal (docs/DEDUP.md)."""
