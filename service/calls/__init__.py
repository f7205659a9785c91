"""The voice line: webhooks, the call position in action URLs, and recording calls."""
