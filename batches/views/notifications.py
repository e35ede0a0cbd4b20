"""Notifications: "Notify me" on a batch page, a project's rules, and the history of what was sent.

Nothing here sends anything: watches and rules are rows, and sends happen in the task queue
(``batches/notify/``), so a slow mail server never slows these pages.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from ..access import actor_name, may_operate, project_view, visible_projects
from ..models import Notification, NotificationRule, Watch
from ..notify.channels import recipient_label
from ..notify.forms import RuleForm, WatchEmailForm
from ..notify.watching import SESSION_EMAIL, person_and_email
from ..projects import Project
from ..upstream import InvalidId, validate_id
from .pages import render_page

HISTORY_PAGE_SIZE = 50


@require_POST
@project_view
def batch_watch(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    """Start or stop watching a batch. Readers may watch (it does not act on the batch), so the
    sign-in middleware lets look-only people POST here (``READ_ONLY_POST_VIEWS``); the project is
    still checked (404 for a project the person may not see)."""
    try:
        validate_id(batch_id)
    except InvalidId as err:
        raise Http404(str(err)) from err
    action = request.POST.get("action")
    person, email = person_and_email(request)
    error = None
    if action == "watch":
        if not email or not request.user.is_authenticated:
            form = WatchEmailForm(request.POST)
            if form.is_valid():
                email = form.cleaned_data["email"]
                if not request.user.is_authenticated:
                    # No sign-in: the address is the only identity this browser has.
                    person = email
                    request.session[SESSION_EMAIL] = email
            else:
                error = "Enter the email address to notify."
        if error is None:
            Watch.objects.get_or_create(project=project.slug, batch_id=batch_id, person=person, defaults={"email": email})
            text = f"You will get an email at {email} when this batch finishes."
    elif action == "unwatch":
        if person:
            Watch.objects.filter(project=project.slug, batch_id=batch_id, person=person).delete()
        text = "You will no longer be notified about this batch."
    else:
        return HttpResponseBadRequest("action must be watch or unwatch")
    if request.htmx:
        context = {"project": project, "batch_id": batch_id, "watch_error": error}
        # htmx swaps only 2xx answers: the form comes back with its error as a 200.
        return render(request, "batches/_watch.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, text)
    return redirect("batches:detail", project=project.slug, batch_id=batch_id)


@require_http_methods(["GET", "HEAD", "POST"])
@vary_on_headers("HX-Request")
@project_view
def notification_rules(request: HttpRequest, project: Project) -> HttpResponse:
    """A project's rules: everyone in the project sees them; its operators add and delete them."""
    can_edit = may_operate(request, project)
    form = RuleForm(project=project.slug)
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only the project's operators may change its notification rules.")
        form = RuleForm(request.POST, project=project.slug)
        if form.is_valid():
            data = form.cleaned_data
            NotificationRule.objects.create(
                project=project.slug, kind=data["kind"], threshold=data["threshold"], channel=data["channel"],
                target=data["target"], created_by=actor_name(request),
            )
            messages.success(request, "Rule added.")
            if not request.htmx:
                return redirect("batches:notifications", project=project.slug)
            form = RuleForm(project=project.slug)
        else:
            status = 400 if not request.htmx else 200
    context = {"rules": _rule_rows(project), "form": form, "can_edit": can_edit}
    return render_page(request, "batches/notification_rules.html", "rules-section", context, status=status)


@require_POST
@project_view
def notification_rule_delete(request: HttpRequest, project: Project, rule_id: int) -> HttpResponse:
    if not may_operate(request, project):
        raise PermissionDenied("Only the project's operators may change its notification rules.")
    rule = get_object_or_404(NotificationRule, pk=rule_id, project=project.slug)
    rule.delete()
    messages.success(request, "Rule deleted.")
    if request.htmx:
        context = {"rules": _rule_rows(project), "form": RuleForm(project=project.slug), "can_edit": True}
        return render(request, "batches/notification_rules.html#rules-section", context)
    return redirect("batches:notifications", project=project.slug)


@require_safe
@vary_on_headers("HX-Request")
def notification_history(request: HttpRequest) -> HttpResponse:
    """The person's watches, and every notification of the projects they may see (sent, pending and
    failed, with attempts and the last error), newest first, filterable by project and state."""
    projects = visible_projects(request)
    visible = [project.slug for project in projects]
    chosen = request.GET.get("project", "")
    if chosen not in visible:
        chosen = ""  # an unknown or hidden project filters nothing and reveals nothing
    state = request.GET.get("state", "")
    if state not in Notification.State.values:
        state = ""
    rows = Notification.objects.filter(project__in=[chosen] if chosen else visible)
    if state:
        rows = rows.filter(state=state)
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    for row in page.object_list:
        row.recipient_label = recipient_label(row.recipient)
    person, _ = person_and_email(request)
    watches = Watch.objects.filter(person=person, project__in=visible).order_by("-created_at")[:100] if person else []
    filters = {key: value for key, value in (("project", chosen), ("state", state)) if value}
    context = {
        "projects": projects,
        "chosen_project": chosen,
        "chosen_state": state,
        "states": Notification.State.choices,
        "page": page,
        "watches": watches,
        "filter_query": urlencode(filters),
    }
    return render_page(request, "batches/notifications.html", "history-table", context)


def _rule_rows(project: Project) -> list[dict]:
    return [
        {"rule": rule, "target": recipient_label(f"{rule.channel}:{rule.target}")}
        for rule in NotificationRule.objects.filter(project=project.slug)
    ]
