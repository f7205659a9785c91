"""The outbound path: the outbox, the worker that sends it, and the limits on what goes out."""
