"""BPE tokenizer training on the kept text and the token ids of every document (docs/TOKENIZER.md)."""
