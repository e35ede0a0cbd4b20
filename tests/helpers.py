"""Constants the tests share (fixtures live in conftest.py; import these from here, never from it)."""

EMULATOR_KEY = "sk-emulator-test"
# A second project of the same emulator: its own key, its own seeded batches (NOTES.md §6.5).
RESEARCH_KEY = "sk-emulator-research"
# The header htmx sends with every request it makes: ``client.get(url, headers=HTMX)``.
HTMX = {"HX-Request": "true"}
# The organization's admin key of the same emulator: the Admin API's billed costs and usage.
EMULATOR_ADMIN_KEY = "sk-admin-emulator-test"
