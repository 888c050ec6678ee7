"""Webdataset shards: writer, manifest, validation, stats and inspection."""
