"""A real S3 protocol server on loopback: moto's server mode (ThreadedMotoServer) on a free port.

boto3 speaks HTTP to it like to any S3-compatible store; nothing in simpost is patched. Access
keys are real IAM keys made on the server. Inside `with s3.auth():` the server checks every
request's signature (moto's auth, switched through its /moto-api/reset-auth), so a wrong secret
is refused as S3 refuses it; outside it signatures are not checked, because moto's auth does
not understand presigned URLs (query-string signatures answer 500). moto keeps its state per
process: one server per test module, reset when it stops.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import boto3
import pytest
import requests

BUCKET = "simpost-lab"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass
class MotoS3:
    url: str
    access_key_id: str
    secret_access_key: str
    bucket: str = BUCKET

    def client(self, secret: str | None = None):
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=secret or self.secret_access_key)

    def config(self, **extra) -> dict:
        return {"endpoint_url": self.url, "bucket": self.bucket, "region": "us-east-1",
                "access_key_id": self.access_key_id, "addressing_style": "path", **extra}

    def conn_json(self, keep_days: int = 7, secret: str | None = None, **config) -> dict:
        return {"conn_type": "storage_backend", "password": secret or self.secret_access_key,
                "description": "S3 on loopback (moto)",
                "extra": {"storage_backend": "Lab S3", "storage_backend_id": "s3-moto",
                          "storage_backend_config": json.dumps(self.config(**config)),
                          "storage_backend_keep_days": keep_days, "storage_backend_active": True}}

    @contextmanager
    def auth(self) -> Iterator[None]:
        """Signatures and IAM permissions checked on every request while inside."""
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        try:
            yield
        finally:
            requests.post(f"{self.url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()

    def keys(self, prefix: str = "") -> set[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def _object(self, key: str):
        from moto.s3.models import s3_backends

        for backend in s3_backends[self._account()].values():
            bucket = backend.buckets.get(self.bucket)
            if bucket is not None and key in bucket.keys:
                return bucket.keys[key]
        raise KeyError(key)

    def set_modified(self, key: str, when: datetime) -> None:
        """S3 has no call that sets LastModified: set it in the server's own state, as the
        other emulators' set_modified do."""
        self._object(key).last_modified = when.replace(tzinfo=None)

    @contextmanager
    def slow_restores(self, polls: int) -> Iterator[None]:
        """moto finishes a restore at once; inside, a restore answers `x-amz-restore:
        ongoing-request="true"` for `polls` HeadObjects before it is done, as S3 does for hours
        (moto's state manager, through its HTTP API)."""
        api = f"{self.url}/moto-api/state-manager"
        requests.post(f"{api}/set-transition", timeout=10, json={
            "model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": polls}}).raise_for_status()
        try:
            yield
        finally:
            requests.post(f"{api}/unset-transition", json={"model_name": "s3::keyrestore"}, timeout=10)

    def _account(self) -> str:
        return boto3.client("sts", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key).get_caller_identity()["Account"]

    def empty(self) -> None:
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)


@contextmanager
def moto_s3_server() -> Iterator[MotoS3]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="simpost")
        iam.put_user_policy(UserName="simpost", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        key = iam.create_access_key(UserName="simpost")["AccessKey"]
        s3 = MotoS3(url, key["AccessKeyId"], key["SecretAccessKey"])
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[MotoS3]:
    """One server per test module (import this and `s3_bucket` into the module)."""
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server) -> Iterator[MotoS3]:
    """The module's server with its bucket emptied before and after the test."""
    s3_server.empty()
    yield s3_server
    s3_server.empty()
