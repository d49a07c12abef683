"""The portal's domain: files, upload sessions and their parts, the outbox, tokens, job runs.

Only the services (``portal.services``) change their state; each index names the query
that uses it.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from portal import parts


class IngestFile(models.Model):
    """The canonical file; ``storage_key`` names its final object once it is stored."""

    class Status(models.TextChoices):
        UPLOADING = "uploading"
        STORED = "stored"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    original_filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADING)
    storage_key = models.CharField(max_length=512, blank=True, default="")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ingest_files"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="file_status_created")]

    def __str__(self):
        return f"{self.original_filename} ({self.status})"


class UploadSession(models.Model):
    """One chunked upload of one file, from ``init`` to a terminal state."""

    class Status(models.TextChoices):
        INIT = "init"
        IN_PROGRESS = "in_progress"
        # Every part is in; the file is being assembled (in the request that asked, or by
        # portal_finalize when that request's process died): no parts, no abort, no expiry.
        FINALIZING = "finalizing"
        COMPLETE = "complete"
        FAILED = "failed"
        ABORTED = "aborted"

    OPEN_STATUSES = tuple(map(Status, parts.OPEN_STATUSES))
    # What holds storage and counts against the owner's quotas.
    ACTIVE_STATUSES = (*OPEN_STATUSES, Status.FINALIZING)
    TERMINAL_STATUSES = (Status.COMPLETE, Status.FAILED, Status.ABORTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.OneToOneField(IngestFile, on_delete=models.CASCADE, related_name="session")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="upload_sessions"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INIT)
    chunk_size_bytes = models.BigIntegerField()
    total_size_bytes = models.BigIntegerField()
    total_parts = models.PositiveIntegerField()
    bytes_received = models.BigIntegerField(default=0)
    completed_parts = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    expires_at = models.DateTimeField()
    failure_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While ``finalizing``: the assembly holds the session until this time and renews it as
    # it goes; past it, the assembler is taken for dead and portal_finalize takes over.
    assembly_lease_until = models.DateTimeField(null=True, blank=True)
    assembly_attempts = models.PositiveIntegerField(default=0)
    assembled_bytes = models.BigIntegerField(default=0)
    # The S3 multipart upload of the assembly in progress (cleanup aborts the others).
    assembly_upload_id = models.CharField(max_length=255, blank=True, default="")
    # The file's sha256 over the first ``hashed_parts`` parts, saved as they arrive so that
    # finalize need not read them again (``portal.services.filehash``).
    hashed_parts = models.PositiveIntegerField(default=0)
    hash_state = models.BinaryField(null=True, blank=True, editable=False)
    # A request catching the hash up over parts that came early holds it until then.
    hash_claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="session_owner_idempotency_key_uniq",
            ),
        ]
        indexes = [
            # cleanup "stale": open sessions whose expires_at passed
            models.Index(fields=["status", "expires_at"], name="session_status_expires"),
            # cleanup "orphans" and "prune": terminal sessions by when they finished
            models.Index(fields=["status", "finished_at"], name="session_status_finished"),
            # portal_finalize: assemblies whose lease ran out
            models.Index(
                fields=["assembly_lease_until"],
                condition=Q(status="finalizing"),
                name="session_assembly_lease",
            ),
        ]

    def __str__(self):
        return f"session {self.id} ({self.status})"

    @property
    def is_terminal(self):
        return self.status in self.TERMINAL_STATUSES


class UploadPart(models.Model):
    """One received chunk; ``temp_key`` is blank once its temp object is deleted."""

    session = models.ForeignKey(UploadSession, on_delete=models.CASCADE, related_name="parts")
    part_number = models.PositiveIntegerField()
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    temp_key = models.CharField(max_length=512, blank=True, default="")
    # Where the part starts in ``temp_key``: its offset in its session's file on local disk
    # (``portal.storage.local_in_place``), None for an object of its own (S3).
    temp_offset = models.BigIntegerField(null=True, blank=True)
    # MD5 of the bytes, taken where S3 may copy the part into the final object: a copy whose
    # ETag says the same is checked without reading it (``portal.storage.s3_assembly``).
    md5 = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "part_number"], name="part_session_number_uniq"
            ),
        ]
        indexes = [
            # cleanup "orphans": parts that still hold a temp object, by session
            models.Index(fields=["session"], condition=~Q(temp_key=""), name="part_with_temp_key"),
            # cleanup "sweep": is this listed object tracked by a part row?
            models.Index(fields=["temp_key"], condition=~Q(temp_key=""), name="part_temp_key"),
        ]

    def __str__(self):
        return f"part {self.part_number} of {self.session_id}"


class OutboxEvent(models.Model):
    """A durable event for the runner, delivered at least once or left ``failed``. While
    ``sending``, ``next_attempt_at`` is the lease: a dead dispatcher's row comes due again."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        DELIVERED = "delivered"
        FAILED = "failed"

    FILE_UPLOADED = "file.uploaded"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event_type", "idempotency_key"], name="outbox_type_key_uniq"
            ),
        ]
        indexes = [
            # dispatch: due events
            models.Index(fields=["status", "next_attempt_at"], name="outbox_status_next"),
            # prune: delivered events by age
            models.Index(fields=["status", "delivered_at"], name="outbox_status_delivered"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.id} ({self.status})"


class ApiToken(models.Model):
    """A bearer token, stored as its SHA-256. ``purpose``: the upload API, or (monitoring)
    only ``/status`` and the metrics; neither opens the other."""

    class Purpose(models.TextChoices):
        UPLOAD = "upload"
        MONITORING = "monitoring"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.UPLOAD)
    key_prefix = models.CharField(max_length=12, help_text="First characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.key_prefix}… ({self.user}, {self.name or 'unnamed'})"


class JobRun(models.Model):
    """One run of a periodic job: the heartbeat that shows whether cron is alive."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial"
        FAILED = "failed"
        SKIPPED = "skipped"
        # A run whose process died (SIGKILL, host lost) before it could record its end.
        ABANDONED = "abandoned"

    job = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    host = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["job", "outcome", "started_at"], name="jobrun_job_outcome"),
            models.Index(fields=["started_at"], name="jobrun_started"),
        ]

    def __str__(self):
        return f"{self.job} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"


class TusUpload(models.Model):
    """The tus state of a session (``portal.services.tus``): its offset is the recorded
    parts plus ``tail_bytes``, the start of part ``tail_part`` that a PATCH ended in (kept
    in ``tail_key`` until the next PATCH completes the part). ``hash_state``: the file's
    sha256 over ``hashed_bytes``, while a ``sha256`` metadata value waits to be checked."""

    session = models.OneToOneField(
        UploadSession, on_delete=models.CASCADE, primary_key=True, related_name="tus"
    )
    metadata = models.TextField(blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    tail_key = models.CharField(max_length=512, blank=True, default="")
    tail_part = models.PositiveIntegerField(default=0)
    tail_bytes = models.BigIntegerField(default=0)
    tail_sha256 = models.CharField(max_length=64, blank=True, default="")
    hash_state = models.BinaryField(null=True, blank=True, editable=False)
    hashed_bytes = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            # cleanup "sweep": is this listed object an active upload's tail?
            models.Index(fields=["tail_key"], condition=~Q(tail_key=""), name="tus_tail_key"),
        ]

    def __str__(self):
        return f"tus upload {self.session_id}"
