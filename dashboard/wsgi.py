import os

from django.core.management.base import SystemCheckError
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

application = get_wsgi_application()

# gunicorn runs no system checks; a bad projects file must still refuse to start instead of failing
# pages later (batches/checks.py).
from batches.checks import check_projects  # noqa: E402
from batches.tempfiles import sweep_stale_uploads  # noqa: E402

_problems = check_projects(None)
if _problems:
    raise SystemCheckError("\n".join(f"{p.id}: {p.msg}" for p in _problems))

# Each process that serves pages starts by removing the temporary upload files a stopped process left
# behind (batches/uploads.py); under gunicorn that is every worker, as it starts.
sweep_stale_uploads()
