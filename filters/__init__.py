"""Quality and safety filters: scorers that write meta.scores, thresholds that decide (docs/FILTERS.md)."""
