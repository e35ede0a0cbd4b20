"""``{% job_link project batch_id %}``: on a batch page, a link to the job the batch belongs to."""

from django import template

from ..selectors import job_for_batch

register = template.Library()


@register.inclusion_tag("batches/jobs/_batch_job_link.html")
def job_link(project, batch) -> dict:
    """The job of a batch that a job created: every such batch carries the job's marker in its metadata
    (``jobs/submit.marker``), so a batch without one is no job's and costs no query."""
    if "dashboard_job" not in (batch.metadata or {}):
        return {"project": project, "job": None}
    return {"project": project, "job": job_for_batch(project.slug, batch.id)}
