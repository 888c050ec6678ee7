"""BPE tokenizer training and tokenization (coming with their issue)."""
