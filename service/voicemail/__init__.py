"""Messages callers leave: their reports (`records`), the copy of their audio (`fetch`)."""
