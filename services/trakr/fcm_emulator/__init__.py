"""A small FCM HTTP v1 + OAuth2 stand-in for tests and the demo."""
