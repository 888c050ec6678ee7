"""CLIP: open_clip embeddings of every distinct image and the image filters on them (docs/CLIP.md)."""
