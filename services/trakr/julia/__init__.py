"""julia: turn outbox rows into notifications, collapsing flaps."""
