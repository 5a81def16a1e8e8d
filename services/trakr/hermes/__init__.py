"""hermes: push notifications to FCM topics, exactly once as far as FCM allows."""
