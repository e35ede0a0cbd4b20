"""The local index of every project's batches: what the sync and the webhooks write, and what the
filtered views, search, counts, cost and trouble flags read."""
