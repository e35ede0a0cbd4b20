"""A job's files in an S3-compatible bucket (django-storages) on a real S3 server on loopback (moto's
server mode, started once for this module): created, run, merged and downloaded as with the filesystem."""

from __future__ import annotations

import subprocess
import sys

import boto3
import orjson
import pytest

from batches.jobs.models import Job
from job_helpers import drive, jsonl, make_job, request_line
from servers import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "dashboard-jobs"


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=url, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def s3_storage(s3_server, settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "endpoint_url": s3_server, "access_key": "test", "secret_key": "test", "bucket_name": BUCKET,
        "region_name": "us-east-1"}}}
    return boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1")


def test_a_job_runs_with_its_files_in_an_s3_bucket(client, upstream, s3_storage, settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0
    job = make_job(jsonl([request_line(i, fail=(400 if i == 3 else None)) for i in range(30)]))
    keys = [item["Key"] for item in s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"jobs/{job.folder}/")["Contents"]]
    assert keys == [f"jobs/{job.folder}/in/0.jsonl"]
    job = drive(upstream, job)
    assert job.status == Job.Status.COMPLETED
    body = b"".join(client.get(f"/projects/default/jobs/{job.pk}/results.jsonl").streaming_content)
    answers = [orjson.loads(line) for line in body.splitlines()]
    assert [a["custom_id"] for a in answers] == [f"req-{i}" for i in range(30)]
    assert answers[3]["response"]["status_code"] == 400
    stored = {item["Key"].split("/")[2] for item in s3_storage.list_objects_v2(Bucket=BUCKET, Prefix=f"jobs/{job.folder}/")["Contents"]}
    assert "out" in stored
