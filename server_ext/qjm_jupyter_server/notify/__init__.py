"""Email: composing messages into the outbox, and the sender that drains it."""
