"""The change stream in the bucket: list pending files, read one, archive it."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleettickets.clock import EAT
from fleettickets.errors import FleetTicketsError, ListingError

logger = logging.getLogger(__name__)

CHANGE_FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})\.csv$")


@dataclass(frozen=True)
class ChangeFile:
    key: str
    file_ts: datetime
    etag: str
    size: int
    last_modified: datetime | None = None  # when it landed in the bucket, if listed
    local_path: Path | None = None  # a file given with --inc-csv, keyed as if in the bucket

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Listing:
    files: list[ChangeFile]  # oldest first, by the timestamp in the name
    skipped: list[tuple[str, str]]  # (key, why it is not a change file)


def parse_file_ts(name: str) -> datetime | None:
    """The EAT timestamp in a change file's name, or None if it is not one."""
    match = CHANGE_FILE_NAME.match(name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y-%m-%dT%H-%M-%S").replace(tzinfo=EAT)
    except ValueError:
        return None


def list_change_files(client: Any, bucket: str, prefix: str, page_size: int = 1000) -> Listing:
    """Every change file directly under `prefix`, oldest first.

    The listing is not trusted: S3-compatible stores have shipped pagination
    bugs (a token reissued forever, pages that repeat keys, truncated pages
    without a token), so any page that does not move strictly forward stops
    the run instead of looping or silently missing keys.
    """
    files: list[ChangeFile] = []
    skipped: list[tuple[str, str]] = []
    seen_tokens: set[str] = set()
    last_key = ""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            kwargs["ContinuationToken"] = token
        try:
            page = client.list_objects_v2(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise FleetTicketsError(f"cannot list s3://{bucket}/{prefix}: {_client_error(exc)}") from None
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key <= last_key:
                raise ListingError(
                    f"the bucket listing went backwards or repeated ({key!r} after "
                    f"{last_key!r}); the store's pagination cannot be trusted, nothing was applied"
                )
            last_key = key
            _classify(key, obj, prefix, files, skipped)
        if not page.get("IsTruncated"):
            break
        token = page.get("NextContinuationToken")
        if not token:
            raise ListingError(
                "the bucket listing says it is truncated but gives no continuation token; "
                "stopping rather than missing files"
            )
        if token in seen_tokens:
            raise ListingError("the bucket listing repeated a continuation token; stopping rather than looping")
        seen_tokens.add(token)
    files.sort(key=lambda f: f.file_ts)
    return Listing(files=files, skipped=skipped)


def _classify(
    key: str, obj: dict[str, Any], prefix: str, files: list[ChangeFile], skipped: list[tuple[str, str]]
) -> None:
    name = key[len(prefix) :]
    if "/" in name:
        skipped.append((key, "inside a sub-folder"))
        return
    file_ts = parse_file_ts(name)
    if file_ts is None:
        skipped.append((key, "name is not <YYYY-MM-DDTHH-MM-SS>.csv"))
        return
    files.append(
        ChangeFile(
            key=key,
            file_ts=file_ts,
            etag=obj["ETag"].strip('"'),
            size=int(obj["Size"]),
            last_modified=obj.get("LastModified"),
        )
    )


def open_change_file(client: Any, bucket: str, change: ChangeFile) -> Any:
    """A streaming body of exactly the version that was listed (If-Match on the ETag)."""
    try:
        response = client.get_object(Bucket=bucket, Key=change.key, IfMatch=f'"{change.etag}"')
    except (ClientError, BotoCoreError) as exc:
        detail = _client_error(exc) if isinstance(exc, ClientError) else str(exc)
        raise FleetTicketsError(
            f"{change.key}: cannot read it ({detail}); if it was replaced "
            "while this run was listing, the next run reads the new version"
        ) from None
    return response["Body"]


def archive_change_file(client: Any, bucket: str, change: ChangeFile, processed_prefix: str) -> str:
    """Copy the loaded version to processed/, then delete it from changes/.

    Idempotent: already archived, or already gone, is success. Only the version
    that was loaded is copied and deleted: a different version under the same
    key is left alone and reported.
    Returns what happened: "archived", "already-archived" or "gone".
    """
    target = processed_prefix + change.name
    current = _head(client, bucket, change.key)
    if current is None:
        archived = _head(client, bucket, target)
        if archived is None:
            logger.warning("%s is gone from the bucket and not in %s", change.key, processed_prefix)
        return "already-archived" if archived else "gone"
    if current != change.etag:
        raise FleetTicketsError(
            f"{change.key} now holds a different version (ETag {current}) from the one "
            f"loaded ({change.etag}); it was left in place: check with the exporter"
        )
    try:
        client.copy_object(
            Bucket=bucket,
            Key=target,
            CopySource={"Bucket": bucket, "Key": change.key},
            CopySourceIfMatch=f'"{change.etag}"',
        )
    except (ClientError, BotoCoreError) as exc:
        raise FleetTicketsError(f"{change.key}: archiving to {target} failed: {_client_error(exc)}") from None
    copied = _head_object(client, bucket, target)
    # A multipart ETag is not an MD5 and a copy may get a new one; the size must still match.
    if copied is None or (copied["etag"] != change.etag and "-" not in change.etag) or copied["size"] != change.size:
        raise FleetTicketsError(
            f"{change.key}: the copy in {target} does not match the loaded version; the original was kept"
        )
    try:
        client.delete_object(Bucket=bucket, Key=change.key)
    except (ClientError, BotoCoreError) as exc:
        raise FleetTicketsError(f"{change.key}: copied to {target} but not deleted: {_client_error(exc)}") from None
    return "archived"


def _head(client: Any, bucket: str, key: str) -> str | None:
    found = _head_object(client, bucket, key)
    return found["etag"] if found else None


def _head_object(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = client.head_object(Bucket=bucket, Key=key)
    except BotoCoreError as exc:
        raise FleetTicketsError(f"cannot inspect s3://{bucket}/{key}: {_client_error(exc)}") from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise FleetTicketsError(f"cannot inspect s3://{bucket}/{key}: {_client_error(exc)}") from None
    return {"etag": response["ETag"].strip('"'), "size": int(response["ContentLength"])}


def _client_error(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, BotoCoreError):
        # Network-level: the endpoint did not answer (wrong URL, store down, timeout).
        return f"the S3 endpoint did not answer ({exc})"
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '').strip() or 'no message'}"
