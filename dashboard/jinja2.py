"""The Jinja2 environment of the list rows' macros (``templates/jinja2/batches/rows.jinja``).

Row values are plain dicts (batches/rows.py): ``r.id`` looks the key up first, where Jinja2's own
``getattr`` would try an attribute and fail before it. Anything not a dict is read as Jinja2 reads it.
A missing value renders empty, as in Django's templates (also in DEBUG, where Django's backend would
print the expression instead).
"""

from __future__ import annotations

import jinja2


class RowsEnvironment(jinja2.Environment):
    def getattr(self, obj, attribute):
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def environment(**options) -> jinja2.Environment:
    options["undefined"] = jinja2.ChainableUndefined
    return RowsEnvironment(**options)
