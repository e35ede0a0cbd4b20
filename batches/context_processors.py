from .access import may_operate, visible_projects
from .conf import conf


def dashboard(request):
    """What every page's header needs: the demo notice, sign-in mode, the current project (when the
    page belongs to one) and the projects this person may switch to."""
    project = getattr(request, "project", None)
    projects = visible_projects(request) if hasattr(request, "user") else []
    return {
        "dashboard_emulator": conf().emulator,
        "dashboard_auth_mode": conf().auth,
        "project": project,
        "project_can_operate": project is not None and may_operate(request, project),
        "switch_projects": projects,
        "switch_url_name": _switch_url_name(request),
    }


def _switch_url_name(request) -> str:
    """Switching project keeps the kind of page: list → list, create → create; a batch's pages (its
    id does not exist in another project) → that project's list."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in ("batches:list", "batches:create", "batches:insights", "batches:costs"):
        return match.view_name
    if match is not None and match.view_name == "insights":
        return "batches:insights"  # from the insights of every project to one project's
    if match is not None and match.view_name == "costs":
        return "batches:costs"
    return "batches:list"
