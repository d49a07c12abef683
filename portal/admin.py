"""Read-only admin pages for an operator (state changes belong to the services), but for
deactivating an API token and requeueing a failed outbox event."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Sum

from portal.models import ApiToken, IngestFile, JobRun, OutboxEvent, UploadPart, UploadSession
from portal.services import guards, outbox


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    has_change_permission = has_delete_permission = has_add_permission


@admin.register(IngestFile)
class IngestFileAdmin(ReadOnlyAdmin):
    list_display = ("id", "original_filename", "status", "size_bytes", "uploaded_by", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "original_filename", "sha256", "storage_key")
    date_hierarchy = "created_at"


class UploadPartInline(admin.TabularInline):
    model = UploadPart
    fields = ("part_number", "size_bytes", "sha256", "temp_key", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(UploadSession)
class UploadSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "owner",
        "status",
        "completed_parts",
        "total_parts",
        "expires_at",
        "finished_at",
    )
    list_filter = ("status",)
    search_fields = ("id", "idempotency_key", "file__original_filename")
    inlines = [UploadPartInline]
    list_select_related = ("owner",)


@admin.register(UploadPart)
class UploadPartAdmin(ReadOnlyAdmin):
    list_display = ("session", "part_number", "size_bytes", "temp_key", "created_at")
    search_fields = ("session__id", "temp_key")


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "status", "attempts", "next_attempt_at", "delivered_at")
    list_filter = ("status", "event_type")
    search_fields = ("id", "aggregate_id", "idempotency_key")
    actions = ["requeue"]

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.action(description="Requeue selected failed events for delivery now")
    def requeue(self, request, queryset):
        count = outbox.requeue_failed(ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} event(s) requeued.")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "key_prefix",
        "user",
        "name",
        "purpose",
        "is_active",
        "created_at",
        "last_used_at",
    )
    list_filter = ("is_active", "purpose")
    fields = ("user", "name", "purpose", "key_prefix", "is_active", "created_at", "last_used_at")
    readonly_fields = ("user", "purpose", "key_prefix", "created_at", "last_used_at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "outcome", "started_at", "finished_at", "host")
    list_filter = ("job", "outcome")
    date_hierarchy = "started_at"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Django's user admin, with each user's upload usage against the quotas."""

    list_display = (*UserAdmin.list_display, "open_sessions", "pending_bytes")

    def get_queryset(self, request):
        open_now = guards.counted(prefix="upload_sessions__")
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_sessions=Count("upload_sessions", filter=open_now),
                pending_bytes=Sum("upload_sessions__total_size_bytes", filter=open_now),
            )
        )

    @admin.display(description="Open sessions", ordering="open_sessions")
    def open_sessions(self, user):
        return user.open_sessions

    @admin.display(description="Pending bytes", ordering="pending_bytes")
    def pending_bytes(self, user):
        return user.pending_bytes or 0
