"""Quality and safety filters: scorers that add columns, thresholds that decide (coming with their issue)."""
