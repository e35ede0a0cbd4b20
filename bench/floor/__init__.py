"""The floor of the load figures: a minimal Django view on the same database, rendering the same rows."""
