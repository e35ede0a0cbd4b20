"""Jobs: a request set of any size run through the Batch API until every request has a final answer
(batches/jobs/, docs/jobs.md). List, create (one upload of any size), the job page (updates itself
while the job runs), its results page, summary.json, results.jsonl, failed.jsonl, and the operators'
controls (pause, resume, cancel, retry the final failures), each audited."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from ..jsonl import MAX_LISTED_ERRORS
from ..access import actor_name, may_operate, project_view
from ..projects import Project
from ..jobs import answers as job_answers
from ..jobs import selectors, services, storage
from ..jobs.models import ENDED_JOB_STATUSES, Job, ProjectTick
from ..jobs.tasks import tick_seconds, wake
from ..jobs.upload import JobUploadHandler
from .pages import render_page

ACTIONS = {"pause": services.pause, "resume": services.resume, "cancel": services.cancel, "retry": services.retry_failures}
STATUS_FILTERS = [status for status, _label in Job.Status.choices]


def _job_or_404(project: Project, job_id: int) -> Job:
    job = Job.objects.filter(project=project.slug, pk=job_id).first()
    if job is None:
        raise Http404("There is no such job in this project.")
    return job


@require_GET
@vary_on_headers("HX-Request")
@project_view
def job_list(request: HttpRequest, project: Project) -> HttpResponse:
    jobs = Job.objects.filter(project=project.slug)
    status = request.GET.get("status", "")
    counts = dict(jobs.order_by().values_list("status").annotate(n=Count("pk")))
    if status in STATUS_FILTERS:
        jobs = jobs.filter(status=status)
    chips = [(value, counts.get(value, 0)) for value in STATUS_FILTERS]
    rows = [(job, selectors.progress(job)) for job in jobs[:100]]
    context = {"project": project, "rows": rows, "chips": chips, "status": status, "total": sum(counts.values()),
               "can_operate": may_operate(request, project)}
    return render(request, "batches/jobs/job_list.html", context)


def _create_page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    context.setdefault("listed_errors_max", MAX_LISTED_ERRORS)
    context.setdefault("max_attempts", services.DEFAULT_MAX_ATTEMPTS)
    return render_page(request, "batches/jobs/job_create.html", "job-create-form", context, status=status)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@vary_on_headers("HX-Request")
@project_view
def job_create(request: HttpRequest, project: Project) -> HttpResponse:
    """The upload handler is chosen before the body is read, hence csrf_exempt outside and
    csrf_protect inside (Django's "modifying upload handlers on the fly")."""
    if not may_operate(request, project):
        return _create_page(request, {"project": project, "forbidden": True}, status=403)
    if request.method != "POST":
        return _create_page(request, {"project": project})
    with storage.LocalScratch() as scratch:
        request.upload_handlers = [JobUploadHandler(request, project.limits, scratch)]
        return _create_post(request, project)


@csrf_protect
def _create_post(request: HttpRequest, project: Project) -> HttpResponse:
    name = request.POST.get("name", "").strip()  # reads the body: the upload handler runs here
    ingest = getattr(request, "job_ingest", None)
    context = {"project": project, "name": name}
    try:
        max_attempts = int(request.POST.get("max_attempts", services.DEFAULT_MAX_ATTEMPTS))
    except ValueError:
        max_attempts = 0
    if ingest is None:
        context["problem"] = "Choose a JSONL file to upload."
        return _create_page(request, context, status=400)
    result = ingest.finish()
    if not 1 <= max_attempts <= 10:
        ingest.discard()
        context["problem"] = "Attempts per request must be a whole number from 1 to 10."
        return _create_page(request, context, status=400)
    try:
        job = services.create_job(project, result, name=name or getattr(request, "job_file_name", ""),
                                  actor=actor_name(request), max_attempts=max_attempts)
    except services.InvalidJobFile as err:
        context.update(result=err.result, problem=str(err))
        return _create_page(request, context, status=400)
    except services.JobRefused as err:  # the budget (batches/costs/) or a provider without files: nothing stored or sent
        context["problem"] = str(err)
        return _create_page(request, context, status=403)
    messages.success(request, f"Job {job.pk} created: {job.total_requests:,} requests.")
    response = redirect("batches:job_detail", project=project.slug, job_id=job.pk)
    if request.htmx:
        return HttpResponseClientRedirect(response["Location"])
    return response


@require_GET
@vary_on_headers("HX-Request")
@project_view
def job_detail(request: HttpRequest, project: Project, job_id: int) -> HttpResponse:
    job = _job_or_404(project, job_id)
    _wake_if_stale(project)
    prog = selectors.progress(job)
    context = {
        "project": project, "job": job, "progress": prog, "queues": selectors.queue_use(project, job),
        "cost": selectors.cost(job, prog.succeeded + prog.failed), "eta": selectors.eta(job, prog),
        "chunks": job.chunks.order_by("number")[:500], "events": job.events.all()[:100],
        "live": not job.ended or selectors.in_flight(job), "poll_seconds": max(int(tick_seconds() // 2), 2),
        "can_operate": may_operate(request, project), "results_ready": job.ended and not selectors.in_flight(job),
    }
    return render_page(request, "batches/jobs/job_detail.html", "job-live", context)


def _wake_if_stale(project: Project) -> None:
    """A page view restarts a pass chain that died with its worker (no pass for three intervals)."""
    tick = ProjectTick.objects.filter(project=project.slug).first()
    stale = tick is None or tick.last_pass_at is None or (timezone.now() - tick.last_pass_at).total_seconds() > 3 * tick_seconds()
    if stale and Job.objects.filter(project=project.slug).exclude(status__in=ENDED_JOB_STATUSES).exists():
        wake(project.slug)


@require_GET
@project_view
def job_summary(request: HttpRequest, project: Project, job_id: int) -> HttpResponse:
    return JsonResponse(selectors.summary(_job_or_404(project, job_id)))


def _not_ended(job: Job) -> HttpResponse:
    return HttpResponse(
        f"Job {job.pk} is {job.status}: its results are ready once it has ended and its running batches are done.\n",
        status=409, content_type="text/plain; charset=utf-8",
    )


def _download(body, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _ended_download(project: Project, job_id: int, kind: str) -> HttpResponse:
    job = _job_or_404(project, job_id)
    if not job.ended or selectors.in_flight(job):
        return _not_ended(job)
    body = job_answers.results_blocks(job) if kind == "results" else job_answers.failed_lines(job)
    return _download(body, f"job-{job.pk}_{kind}.jsonl")


@require_GET
@project_view
def job_results_file(request: HttpRequest, project: Project, job_id: int) -> HttpResponse:
    return _ended_download(project, job_id, "results")


@require_GET
@project_view
def job_failed_file(request: HttpRequest, project: Project, job_id: int) -> HttpResponse:
    return _ended_download(project, job_id, "failed")


@require_GET
@vary_on_headers("HX-Request")
@project_view
def job_results_page(request: HttpRequest, project: Project, job_id: int) -> HttpResponse:
    job = _job_or_404(project, job_id)
    try:
        after = max(int(request.GET.get("after", "0")), 0)
    except ValueError:
        after = 0
    failed_only = request.GET.get("failed") == "1"
    custom_id = request.GET.get("custom_id", "").strip()[:512]
    rows, next_after = job_answers.result_page(job, after=after, failed_only=failed_only, custom_id=custom_id)
    context = {"project": project, "job": job, "rows": rows, "next_after": next_after, "failed_only": failed_only,
               "custom_id": custom_id, "after": after}
    return render_page(request, "batches/jobs/job_results.html", "job-results-table", context)


@require_POST
@project_view
def job_action(request: HttpRequest, project: Project, job_id: int, action: str) -> HttpResponse:
    job = _job_or_404(project, job_id)
    if action not in ACTIONS:
        raise Http404("There is no such action.")
    if not may_operate(request, project):
        return HttpResponse("You may look at jobs but not steer them: that is for the project's operators.", status=403,
                            content_type="text/plain; charset=utf-8")
    try:
        ACTIONS[action](project, job, actor_name(request))
    except services.JobRefused as err:
        messages.error(request, str(err))
    else:
        messages.success(request, {"pause": "Paused.", "resume": "Resumed.", "cancel": "Cancelled.",
                                   "retry": "The final failures are queued for one more attempt."}[action])
    response = redirect("batches:job_detail", project=project.slug, job_id=job.pk)
    if request.htmx:
        return HttpResponseClientRedirect(response["Location"])
    return response
