"""``{% job_link project batch_id %}``: on a batch page, a link to the job the batch belongs to."""

from django import template

from ..selectors import job_for_batch

register = template.Library()


@register.inclusion_tag("batches/jobs/_batch_job_link.html")
def job_link(project, batch_id: str) -> dict:
    return {"project": project, "job": job_for_batch(project.slug, batch_id)}
