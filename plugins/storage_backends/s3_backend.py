"""The `s3` service: a bucket on AWS S3 or an S3-compatible store (MinIO, Ceph), through boto3.

One retry layer: botocore is told to make a single attempt per request (`total_max_attempts`
1, and the managed transfer's own download retries are 1), and our RetryPolicy (retry.py) retries
whole calls. A multipart upload that fails is therefore started again from its first part by our
layer (s3transfer aborts the failed one), within the upload's retry budget.

Integrity: the SHA-256 of the whole archive goes into the object's metadata (`sha256`) and S3
is asked to check SHA-256 checksums as the bytes arrive (ChecksumAlgorithm=SHA256). S3 keeps a
full-object SHA-256 only for a single PUT; for multipart uploads it keeps a composite one (the
SHA-256 of the parts' SHA-256s; full-object checksums exist for CRC algorithms only). Both are
computed here in the same pass over the file and compared with what S3 reports after the upload.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from urllib.parse import quote

from storage_backends.base import BackendError, RemoteFile, RemoteStat, Upload, keep_until, scrub
from storage_backends.naming import is_remote_name
from storage_backends.retry import DEFAULT_RETRY, Retry, RetryPolicy
from storage_backends.settings import BackendSettings, S3Config

log = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024  # multipart above this; parts of this size (S3: 5 MiB..5 GiB, <= 10,000)
MAX_PARTS = 10_000
TRANSFER_THREADS = 4  # parts in flight: memory is about this many parts
MAX_LINK_SECONDS = 7 * 86400  # the longest a SigV4 presigned URL may live
MIN_LINK_SECONDS = 3600  # a copy past its keep days stays until retention runs: a fresh link gets an hour
TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                   "InternalError", "ServiceUnavailable", "503", "500", "RequestLimitExceeded"}
# What the Test button says for the answers a person can act on.
REASONS = {
    "SignatureDoesNotMatch": "wrong secret access key (Backend token)",
    "InvalidAccessKeyId": "unknown access_key_id",
    "NoSuchBucket": "bucket {bucket!r} does not exist",
    "AccessDenied": "access to bucket {bucket!r} denied for this key",
    "403": "access to bucket {bucket!r} denied (wrong secret access key or no permission)",
    "404": "bucket {bucket!r} does not exist",
}


def classify(exc: BaseException) -> Retry | None:
    """Throttling, 5xx and network errors are transient; everything else (403, 404, ...) is not."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = exc.response.get("Error", {}).get("Code", "")
        return Retry() if code in TRANSIENT_CODES or status == 429 or status >= 500 else None
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return Retry()
    from boto3.exceptions import S3UploadFailedError

    if isinstance(exc, S3UploadFailedError):  # s3transfer wraps the part's ClientError in text only
        return Retry() if any(code in str(exc) for code in TRANSIENT_CODES) else None
    return None


def error_code(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "") or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return type(exc).__name__


@dataclass(frozen=True)
class Digests:
    """The archive's SHA-256, and the composite one S3 keeps when it is sent in parts."""

    sha256: str
    composite_b64: str | None  # None: sent in one PUT
    parts: int


def part_size_for(size: int) -> int:
    """PART_SIZE, doubled while a file would need more than 10,000 parts (as s3transfer does)."""
    part = PART_SIZE
    while math.ceil(size / part) > MAX_PARTS:
        part *= 2
    return part


def digests(path: str, size: int) -> Digests:
    """One pass over the file: the whole SHA-256 and, for a multipart upload, the composite."""
    whole, part_digests = hashlib.sha256(), []
    part = part_size_for(size)
    with open(path, "rb") as f:
        while data := f.read(part):
            whole.update(data)
            part_digests.append(hashlib.sha256(data).digest())
    if size < PART_SIZE:  # s3transfer sends files below the threshold in one PUT
        return Digests(whole.hexdigest(), None, 1)
    composite = base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()
    return Digests(whole.hexdigest(), composite, len(part_digests))


@dataclass(frozen=True)
class RestoreStatus:
    """HeadObject's view of an object in a cold class: `x-amz-restore` parsed.

    `archived`: the object is in an archive class and not readable without a restore;
    `ongoing`: a restore runs; `expires_at`: until when a restored copy stays readable."""

    storage_class: str
    archived: bool
    ongoing: bool
    expires_at: datetime | None

    @property
    def readable(self) -> bool:
        return not self.archived or (not self.ongoing and self.expires_at is not None)


COLD_CLASSES = {"GLACIER", "DEEP_ARCHIVE"}
# How long S3 documents a restore takes, in hours, per storage class and tier (AWS S3 User Guide,
# "Archive retrieval options"); DEEP_ARCHIVE has no Expedited tier.
RETRIEVAL_HOURS = {("GLACIER", "Expedited"): (1 / 60, 5 / 60), ("GLACIER", "Standard"): (3, 5),
                   ("GLACIER", "Bulk"): (5, 12), ("DEEP_ARCHIVE", "Standard"): (0, 12),
                   ("DEEP_ARCHIVE", "Bulk"): (0, 48)}


@dataclass(frozen=True)
class Thaw:
    """Where a copy in a cold class stands once a restore was asked for (S3Backend.thaw)."""

    storage_class: str
    tier: str
    readable: bool  # a restored (or never archived) copy: it can be downloaded now
    joined: bool  # S3 answered RestoreAlreadyInProgress: an earlier request's restore runs
    hours: tuple[float, float] | None  # S3's documented duration for the class and tier

    @property
    def ready_by_hours(self) -> float | None:
        return self.hours[1] if self.hours else None

    def note(self) -> str:
        """"S3 GLACIER, Standard retrieval: ready in about 3-5 hours", for the log and the catalog."""
        head = f"S3 {self.storage_class}, {self.tier} retrieval"
        if self.readable or not self.hours:
            return f"{head}: {'readable now' if self.readable else 'no documented duration'}"
        low, high = self.hours
        if high < 1:
            return f"{head}: ready in about {round(low * 60)}-{round(high * 60)} minutes"
        return f"{head}: ready in {f'about {low:g}-{high:g}' if low else f'up to {high:g}'} hours"


def parse_restore(header: str | None, storage_class: str) -> RestoreStatus:
    """`ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` -> RestoreStatus."""
    fields = dict(re.findall(r'([\w-]+)="([^"]*)"', header or ""))  # the date holds a comma itself
    ongoing = fields.get("ongoing-request") == "true"
    expiry = fields.get("expiry-date")
    expires = parsedate_to_datetime(expiry).astimezone(timezone.utc) if expiry else None
    return RestoreStatus(storage_class, storage_class in COLD_CLASSES, ongoing, expires)


class S3Backend:
    """One bucket; remote ids are object keys `<prefix><remote name>`."""

    # ListObjectsV2 gives size and ETag, not the SHA-256 HeadObject gives: a HEAD per copy
    LISTING_VERIFIES = False

    def __init__(self, settings: BackendSettings, retry: RetryPolicy = DEFAULT_RETRY):
        if not isinstance(settings.config, S3Config):
            raise TypeError("S3Backend needs s3 settings")
        self.settings, self.cfg, self.retry = settings, settings.config, retry

    @cached_property
    def client(self):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id=self.cfg.access_key_id,
                                        aws_secret_access_key=self.cfg.secret_access_key,
                                        region_name=self.cfg.region or "us-east-1")
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"},  # our layer retries
                        connect_timeout=10, read_timeout=300, signature_version="s3v4",
                        s3={"addressing_style": self.cfg.addressing_style or "auto"})
        return session.client("s3", endpoint_url=self.cfg.endpoint_url, config=config)

    @property
    def where(self) -> str:
        return f"s3://{self.cfg.bucket}/{self.cfg.prefix}" + (f" at {self.cfg.endpoint_url}" if self.cfg.endpoint_url else "")

    def _call(self, what: str, fn, *args, **kwargs):
        """One S3 call through our retry layer; a failure becomes a BackendError without secrets."""
        try:
            return self.retry.run(lambda: fn(*args, **kwargs), what=f"s3 {what}", classify=classify)
        except BackendError:
            raise
        except Exception as exc:
            code = error_code(exc)
            reason = REASONS.get(code, code).format(bucket=self.cfg.bucket)
            message = f"{self.settings.describe()}: {what} at {self.where} failed: {reason}"
            raise BackendError(scrub(message, self.settings.secrets)) from None

    def _key(self, remote_id: str) -> str:
        name = remote_id[len(self.cfg.prefix):] if remote_id.startswith(self.cfg.prefix) else ""
        if not is_remote_name(name):
            raise BackendError(f"{self.settings.describe()}: {remote_id!r} is not a simpost upload under "
                               f"{self.cfg.prefix!r}")
        return remote_id

    def _transfer(self):
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                              max_concurrency=TRANSFER_THREADS, num_download_attempts=1)

    # -- upload -----------------------------------------------------------------------------
    def upload(self, path: str, remote_name: str, keep_days: int, storage_class: str | None = None) -> Upload:
        """`storage_class`: this copy's class (the archive tier passes `archive_storage_class`)."""
        import os

        key = self.cfg.prefix + remote_name
        size = os.path.getsize(path)
        want = digests(path, size)
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": want.sha256},
                 "ContentType": "application/zip",
                 "ContentDisposition": f"attachment; filename=\"{remote_name}\""}
        if storage_class or self.cfg.storage_class:
            extra["StorageClass"] = storage_class or self.cfg.storage_class
        config = self._transfer()
        config.multipart_chunksize = part_size_for(size)
        self._call("upload", self.client.upload_file, path, self.cfg.bucket, key, ExtraArgs=extra, Config=config)
        head = self._call("upload check", self.client.head_object, Bucket=self.cfg.bucket, Key=key,
                          ChecksumMode="ENABLED")
        got = (head.get("ChecksumSHA256") or "").split("-")[0]
        expected = want.composite_b64 or base64.b64encode(bytes.fromhex(want.sha256)).decode()
        if head["ContentLength"] != size or (got and got != expected):
            raise BackendError(f"{self.settings.describe()}: {key} differs from the archive after upload "
                               f"(size {head['ContentLength']} of {size}, checksum {got or 'none'})")
        uploaded_at = head["LastModified"].astimezone(timezone.utc)
        link, link_expires_at = self._link(key, keep_days, uploaded_at)
        log.info("uploaded %s (%d bytes, %d part(s)) to %s", key, size, want.parts, self.where)
        return Upload(remote_id=key, link=link, size=size, sha256=want.sha256, uploaded_at=uploaded_at,
                      expires_at=keep_until(uploaded_at, keep_days), link_expires_at=link_expires_at)

    def _link(self, key: str, keep_days: int, uploaded_at: datetime) -> tuple[str, datetime | None]:
        """A plain link on a public bucket (it lasts as long as the object: no expiry of its own),
        else a presigned GET that lasts the earlier of keep days and 7 days (SigV4's limit), and
        when it stops working: the copy itself is kept for its keep days all the same."""
        if not self.signs_links:
            return f"{self.cfg.public_base_url}/{quote(key)}", None
        return self.fresh_link(key, keep_until(uploaded_at, keep_days), uploaded_at)

    @property
    def signs_links(self) -> bool:
        """Whether this bucket's links end on their own (presigned), so a kept copy needs fresh ones."""
        return not self.cfg.public_base_url

    def fresh_link(self, remote_id: str, keep_until: datetime | None, now: datetime) -> tuple[str, datetime]:
        """A new signed link to a present copy and when it stops working: when the copy goes
        (`keep_until`), never past SigV4's 7 days, at least MIN_LINK_SECONDS."""
        seconds = MAX_LINK_SECONDS
        if keep_until is not None:
            seconds = min(max(int((keep_until - now).total_seconds()), MIN_LINK_SECONDS), MAX_LINK_SECONDS)
        return self.presign(remote_id, seconds), now + timedelta(seconds=seconds)

    def presign(self, remote_id: str, seconds: int = MAX_LINK_SECONDS) -> str:
        """A fresh link to a present copy (signing is local: no call, nothing to retry)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.cfg.bucket, "Key": self._key(remote_id)},
            ExpiresIn=min(int(seconds), MAX_LINK_SECONDS))

    # -- list, delete, stat, download -----------------------------------------------------------
    def list_uploads(self) -> list[RemoteFile]:
        """Only objects directly under the prefix with the names this project gives."""
        def every_page():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.cfg.bucket, Prefix=self.cfg.prefix, Delimiter="/")
            return [obj for page in pages for obj in page.get("Contents", [])]

        out = []
        for obj in self._call("list", every_page):
            name = obj["Key"][len(self.cfg.prefix):]
            if is_remote_name(name):
                out.append(RemoteFile(remote_id=obj["Key"], name=name, size=obj["Size"],
                                      modified_at=obj["LastModified"].astimezone(timezone.utc)))
        return sorted(out, key=lambda f: f.name)

    def delete(self, remote_id: str) -> None:
        """Only objects this project named; S3 answers a delete of a missing key with success too."""
        self._call("delete", self.client.delete_object, Bucket=self.cfg.bucket, Key=self._key(remote_id))

    def _head(self, remote_id: str) -> dict | None:
        from botocore.exceptions import ClientError

        def head():
            try:
                return self.client.head_object(Bucket=self.cfg.bucket, Key=self._key(remote_id),
                                               ChecksumMode="ENABLED")
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

        return self._call("stat", head)

    def stat(self, remote_id: str) -> RemoteStat:
        """S3's own full-object SHA-256 for a single-PUT object; for a multipart one, the SHA-256
        stored at upload (whose composite checksum S3 verified and we compared after the upload)."""
        head = self._head(remote_id)
        if head is None:
            return RemoteStat(exists=False)
        s3_sum = head.get("ChecksumSHA256") or ""
        if s3_sum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT" and "-" not in s3_sum \
                and not head.get("ETag", "").rstrip('"').count("-"):
            checksum = base64.b64decode(s3_sum).hex()
        else:
            checksum = head.get("Metadata", {}).get("sha256")
        return RemoteStat(exists=True, size=head["ContentLength"], checksum=checksum,
                          checksum_kind="sha256" if checksum else None)

    def download(self, remote_id: str, path: str) -> None:
        self._call("download", self.client.download_file, self.cfg.bucket, self._key(remote_id), path,
                   Config=self._transfer())

    # -- cold tier ------------------------------------------------------------------------------
    def request_restore(self, remote_id: str, days: int, tier: str = "Standard") -> bool:
        """Ask S3 for a readable copy of an archived object for `days`; False when one is already
        being restored (RestoreAlreadyInProgress: the caller joins it)."""
        from botocore.exceptions import ClientError

        def restore():
            try:
                self.client.restore_object(Bucket=self.cfg.bucket, Key=self._key(remote_id),
                                           RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}})
                return True
            except ClientError as exc:
                if error_code(exc) == "RestoreAlreadyInProgress":
                    return False
                raise

        return self._call("restore request", restore)

    def thaw(self, remote_id: str) -> Thaw:
        """Make a copy readable: nothing for one in a hot class or already restored, else a
        RestoreObject in the configured tier for `restore_days` (joining S3's running one)."""
        status = self.restore_status(remote_id)
        if status is None:
            raise BackendError(f"{self.settings.describe()}: {remote_id} is gone from {self.where}")
        tier = self.cfg.restore_tier
        hours = RETRIEVAL_HOURS.get((status.storage_class, tier))
        if status.readable:
            return Thaw(status.storage_class, tier, readable=True, joined=False, hours=hours)
        requested = self.request_restore(remote_id, self.cfg.restore_days, tier)
        log.info("restore of %s from %s (%s, %s tier, %d day(s)): %s", remote_id, status.storage_class, self.where,
                 tier, self.cfg.restore_days, "requested" if requested else "already in progress, joined")
        return Thaw(status.storage_class, tier, readable=False, joined=not requested, hours=hours)

    def restore_status(self, remote_id: str) -> RestoreStatus | None:
        """None when the object is gone."""
        head = self._head(remote_id)
        if head is None:
            return None
        return parse_restore(head.get("Restore"), head.get("StorageClass") or "STANDARD")

    # -- the Test button -----------------------------------------------------------------------
    def check(self) -> tuple[bool, str]:
        """Credentials and bucket in one listing call (one attempt: the button's policy), then
        whether the bucket's lifecycle rules could do the keep days."""
        try:
            self._call("listing", self.client.list_objects_v2, Bucket=self.cfg.bucket, Prefix=self.cfg.prefix,
                       MaxKeys=1)
        except BackendError as exc:
            return False, str(exc)
        return True, f"bucket {self.cfg.bucket!r} reachable with this key ({self.where}). {self._lifecycle()}"

    def _lifecycle(self) -> str:
        from botocore.exceptions import ClientError

        keep = self.settings.keep_days
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.cfg.bucket).get("Rules", [])
        except ClientError as exc:
            if error_code(exc) == "NoSuchLifecycleConfiguration":
                return "The bucket has no lifecycle rules; simpost's retention deletes by keep days."
            return f"The bucket's lifecycle rules could not be read ({error_code(exc)})."
        except Exception as exc:  # the listing worked: a failure here only loses the hint
            return f"The bucket's lifecycle rules could not be read ({type(exc).__name__})."
        for rule in rules:
            prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
            days = rule.get("Expiration", {}).get("Days")
            if rule.get("Status") == "Enabled" and days and self.cfg.prefix.startswith(prefix or ""):
                fits = "the same as" if days == keep else "not the same as"
                return (f"Lifecycle rule {rule.get('ID', '')!r} expires objects under {prefix or '(all)'!r} after "
                        f"{days} days ({fits} keep days {keep}): the bucket could do keep days itself; "
                        "simpost's retention deletes by keep days anyway.")
        return (f"The bucket has {len(rules)} lifecycle rule(s), none expiring objects under "
                f"{self.cfg.prefix!r}; simpost's retention deletes by keep days.")


def link_signer(backend) -> S3Backend | None:
    """The service behind an opened backend when its links end on their own (s3 without a public
    base URL), else None: its copies need a fresh link now and then (S3Backend.fresh_link)."""
    service = getattr(backend, "service", backend)
    return service if isinstance(service, S3Backend) and service.signs_links else None
