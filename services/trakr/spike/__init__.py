"""spike: the read API the apps use."""
