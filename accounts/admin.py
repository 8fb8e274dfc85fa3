from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts import models


@admin.register(models.User)
class ClaimportalUserAdmin(UserAdmin):
    pass


@admin.register(models.CloudAccount)
class CloudAccountAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "state", "created_at", "claim_expires_at", "owner"]
    list_filter = ["state"]
    list_select_related = ["owner"]
    search_fields = ["id", "name", "subdomain", "owner__email"]
    readonly_fields = ["id", "origin_hash", "created_at", "claimed_at", "purged_at"]


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "account", "kind", "created_at", "revoked_at"]
    list_select_related = ["account"]
    exclude = ["secret_hash"]
    readonly_fields = ["prefix", "account", "created_at", "last_used_at"]


@admin.register(models.ClaimLink)
class ClaimLinkAdmin(admin.ModelAdmin):
    list_display = ["account", "state", "expires_at", "used_at", "used_by"]
    list_select_related = ["account", "used_by"]
    exclude = ["key_hash"]


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "starts_at",
        "ends_at",
        "quota",
        "accounts_created",
        "disabled",
    ]


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "account_ref", "actor_label"]
    list_filter = ["kind"]
    search_fields = ["account_ref"]


admin.site.register(models.BlockedOrigin)
admin.site.register(models.AbuseReport)
