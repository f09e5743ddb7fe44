"""Drivers: botocore's events in, the engine's decisions, the cache's I/O out."""
