"""Serving: deployed campaigns answering real-time requests."""
