"""The names and version of Loom's output format, in a module with no heavy imports (the shards
writer pulls in webdataset and torch; ``loom report`` and ``loom stats`` need only these)."""

from __future__ import annotations

FORMAT_VERSION = 4
FORMAT = f"loom/{FORMAT_VERSION}"
SHARDS = "shards"
MANIFEST = "manifest.parquet"
