"""Notifications: "Notify me" watches and per-project rules, recorded once per batch, event and
recipient from index changes, and sent through the task queue (docs/notifications.md)."""
