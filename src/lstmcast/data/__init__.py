"""Price data: the canonical frame, the local store, the vendor sources."""
