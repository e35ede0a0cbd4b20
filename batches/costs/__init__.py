"""Money: budgets per project that hold, and the estimates checked against OpenAI's bill.

``config`` parses the ``[projects.<slug>.budget]`` and ``[organization]`` tables of the projects
file (ground floor: ``batches/projects.py`` calls it); ``spend`` computes the month-to-date spend and
its forecast from the index; ``budgets`` says whether a new batch or job may start
(:func:`budgets.budget_allows`); ``alerts`` records threshold crossings and drifts once and tells the
project's "budget" notification rules; ``billing`` fetches billed costs through the Admin API
(``batches/upstream/admin.py``) and compares them with the estimates.
"""
