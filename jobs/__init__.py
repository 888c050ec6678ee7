"""Job specs, examples and cluster submission (`loom submit`)."""
