"""ein: the delta-diff ingester."""
