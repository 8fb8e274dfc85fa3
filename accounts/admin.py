"""The moderator's console: every cloud account, what it holds and did, and one
click for each moderation job.

Actions call services (which lock, re-check and audit with the acting admin)
and report per account. The account list costs a fixed number of queries
whatever the number of rows: everything per row is a subquery annotation.
"""

import ipaddress
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from allauth.account.decorators import secure_admin_login
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    QuerySet,
    StringAgg,
    Subquery,
    Value,
)
from django.db.models import Model as DjangoModel
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince, timeuntil

from accounts import models, selectors, tokens
from accounts.exceptions import DomainError
from accounts.services import claims, moderation, purge, reports
from accounts.services.previews.client import runtime_status
from accounts.services.provisioning import EVENT_CODE

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

State = models.CloudAccount.State

# Signing in to the admin goes through allauth: its rate limits and, for
# those who turned it on, its second factor. (Wrapping the site's bound view is
# how allauth documents it.)
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]


def _moderator(request: HttpRequest) -> models.User:
    """The person acting: the admin site lets only signed-in staff in."""
    user = request.user
    assert isinstance(user, models.User)
    return user


admin.site.site_header = "claimportal moderation"
admin.site.site_title = "claimportal moderation"


@admin.register(models.User)
class ClaimportalUserAdmin(UserAdmin):
    pass


# --- Read-only building blocks ----------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows made by the product itself: moderators look, services change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _short(digest: str) -> str:
    return f"{digest[:12]}…" if digest else "—"


def _account_link(account_id: str, label: str) -> str:
    url = reverse("admin:accounts_cloudaccount_change", args=[account_id])
    return format_html('<a href="{}">{}</a>', url, label)


# --- Inlines: everything an account holds, and its history ------------------------


class WorkerInline(ReadOnlyInline):
    model = models.WorkerScript
    fields = [
        "name",
        "preview",
        "runtime",
        "version",
        "workers_dev_enabled",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .select_related("account", "current_version")
            .only(
                "name",
                "workers_dev_enabled",
                "updated_at",
                "account__subdomain",
                "current_version__number",
            )
        )

    @admin.display(description="preview")
    def preview(self, script: models.WorkerScript) -> str:
        url = selectors.preview_url(
            script=script.name, subdomain=script.account.subdomain
        )
        return format_html('<a href="{}" rel="noreferrer">{}</a>', url, url)

    @admin.display(description="in the runtime")
    def runtime(self, script: models.WorkerScript) -> str:
        """Its state, and why it failed or was stopped (asked once per page)."""
        if not hasattr(self, "_runtime"):
            self._runtime = (runtime_status() or {}).get("workers", {})
        worker = self._runtime.get(str(script.pk))
        if worker is None:
            return "—"
        why = worker.get("error") or worker.get("exit_reason") or ""
        return f"{worker['state']}: {why}" if why else worker["state"]

    @admin.display(description="version")
    def version(self, script: models.WorkerScript) -> str:
        return f"v{script.current_version.number}" if script.current_version else "—"


class _KeyCount(TypedDict):
    key_count: int


class KVNamespaceInline(ReadOnlyInline):
    model = models.KVNamespace
    fields = ["title", "id", "keys", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(key_count=Count("entries"))

    @admin.display(description="keys")
    def keys(self, namespace: "WithAnnotations[models.KVNamespace, _KeyCount]") -> int:
        return namespace.key_count


class D1DatabaseInline(ReadOnlyInline):
    model = models.D1Database
    fields = ["name", "uuid", "file_size", "table_count", "created_at"]


class DurableObjectInline(ReadOnlyInline):
    model = models.DurableObjectNamespace
    fields = ["class_name", "script", "use_sqlite", "created_at"]
    fk_name = "account"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("script")


class _QueueCounts(TypedDict):
    consumers_n: int
    messages_n: int


class QueueInline(ReadOnlyInline):
    model = models.Queue
    fields = ["name", "consumer_count", "message_count", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                consumers_n=Count("consumers", distinct=True),
                messages_n=Count("messages", distinct=True),
            )
        )

    @admin.display(description="consumers")
    def consumer_count(
        self, queue: "WithAnnotations[models.Queue, _QueueCounts]"
    ) -> int:
        return queue.consumers_n

    @admin.display(description="messages waiting")
    def message_count(
        self, queue: "WithAnnotations[models.Queue, _QueueCounts]"
    ) -> int:
        return queue.messages_n


class HyperdriveInline(ReadOnlyInline):
    model = models.HyperdriveConfig
    fields = ["name", "origin_host", "created_at"]  # never the password

    @admin.display(description="origin")
    def origin_host(self, config: models.HyperdriveConfig) -> str:
        origin = config.origin or {}
        return f"{origin.get('host', '?')}:{origin.get('port', '?')}"


class CertificateInline(ReadOnlyInline):
    model = models.Certificate
    fields = ["name", "kind", "issuer", "expires_on", "uploaded_on"]  # no key


class AssetBlobInline(ReadOnlyInline):
    model = models.AssetBlob
    fields = ["hash", "size", "content_type", "created_at"]


class TokenInline(ReadOnlyInline):
    model = models.ApiToken
    fields = [
        "prefix",
        "kind",
        "name",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_because",
    ]


class ClaimLinkInline(ReadOnlyInline):
    model = models.ClaimLink
    fields = ["state", "created_at", "used_at", "used_by"]  # no key

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("used_by")


class AbuseReportInline(ReadOnlyInline):
    model = models.AbuseReport
    fields = ["created_at", "reason", "contact_email", "handled_at", "handled_by"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("handled_by")


class AuditInline(ReadOnlyInline):
    model = models.AuditEvent
    fields = ["created_at", "kind", "actor_label", "origin", "details"]
    verbose_name_plural = "audit trail"

    @admin.display(description="origin")
    def origin(self, event: models.AuditEvent) -> str:
        return _short(event.origin_hash)


# --- The account list -------------------------------------------------------------

# What the list counts per account, and the label it shows the count with.
RESOURCE_COUNTS = {
    "n_workers": (models.WorkerScript, "Worker"),
    "n_kv": (models.KVNamespace, "KV"),
    "n_d1": (models.D1Database, "D1"),
    "n_do": (models.DurableObjectNamespace, "DO class"),
    "n_queues": (models.Queue, "queue"),
    "n_hyperdrive": (models.HyperdriveConfig, "Hyperdrive"),
    "n_certs": (models.Certificate, "cert"),
    "n_assets": (models.AssetBlob, "asset"),
}


def _per_account(model: type[DjangoModel], value: Aggregate) -> Subquery:
    """One aggregate over ``model``'s rows of each account, as a subquery."""
    rows = (
        model._default_manager.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(value=value)
        .values("value")
    )
    return Subquery(rows)


class ExpiringFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "expiring"

    def lookups(self, request, model_admin):
        return [
            ("hour", "Expiring within the hour"),
            ("overdue", "Past deadline, purge pending"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "hour":
            return queryset.filter(
                state=State.PENDING,
                claim_expires_at__gt=now,
                claim_expires_at__lte=now + timedelta(hours=1),
            )
        if self.value() == "overdue":
            return queryset.filter(purge.due(now))
        return queryset


class OpenReportsFilter(admin.SimpleListFilter):
    title = "abuse reports"
    parameter_name = "reports"

    def lookups(self, request, model_admin):
        return [("open", "Has open reports"), ("none", "No open reports")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("open", "none"):
            return queryset.filter(has_open_reports=self.value() == "open")
        return queryset


class ExtendForm(forms.Form):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limit = int(settings.CLAIMPORTAL_MAX_EXTENSION.total_seconds() // 60)
        self.fields["minutes"] = forms.IntegerField(
            label="Extend the claim window by (minutes)",
            min_value=1,
            max_value=limit,
            initial=60,
            help_text=f"The window may reach at most {limit} minutes from now.",
        )


class BlockOriginForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False)
    days = forms.IntegerField(
        label="Block for (days)",
        min_value=1,
        required=False,
        help_text="Leave empty to block until someone lifts it.",
    )


class ConfirmForm(forms.Form):
    pass


def _one_click(service: Callable[..., Any], *, done: str, description: str):
    """An account action that needs no questions: ``service`` is called for
    each selected account with the moderator as actor."""

    @admin.action(description=description, permissions=["change"])
    def action(model_admin, request: HttpRequest, queryset: QuerySet) -> None:
        model_admin._each(
            request,
            queryset,
            done,
            lambda pk, now: service(account_id=pk, actor=_moderator(request), now=now),
        )

    return action


class _AccountColumns(TypedDict):
    workers_joined: str | None
    has_open_reports: bool


if TYPE_CHECKING:
    _ListedAccount = WithAnnotations[models.CloudAccount, _AccountColumns]


@admin.register(models.CloudAccount)
class CloudAccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "state_shown",
        "subdomain",
        "worker_names",
        "resources",
        "created_at",
        "deadline",
        "owner",
        "event",
        "origin",
        "reported",
    ]
    list_filter = [
        "state",
        ExpiringFilter,
        OpenReportsFilter,
        "event",
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["owner", "event"]
    list_per_page = 100
    search_fields = ["=id", "name", "subdomain", "workers__name", "owner__email"]
    search_help_text = (
        "Account id, name, subdomain, Worker name, owner email, or a token "
        "(its visible prefix is enough)."
    )
    ordering = ["-created_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "subdomain", "state", "owner", "event"]}),
        (
            "Deadlines",
            {"fields": ["created_at", "claim_expires_at", "claimed_at", "declined_at"]},
        ),
        (
            "Where it came from",
            {"fields": ["origin_hash", "origin_hint", "user_agent"]},
        ),
        (
            "Lifecycle",
            {"fields": ["state_before_suspension", "purged_at", "terms_accepted_at"]},
        ),
    ]
    readonly_fields = flatten_fieldsets(fieldsets)  # state changes by action only
    inlines = [
        WorkerInline,
        KVNamespaceInline,
        D1DatabaseInline,
        DurableObjectInline,
        QueueInline,
        HyperdriveInline,
        CertificateInline,
        AssetBlobInline,
        TokenInline,
        ClaimLinkInline,
        AbuseReportInline,
        AuditInline,
    ]
    actions = [
        "suspend",
        "unsuspend",
        "extend_claim_window",
        "expire_now",
        "purge_now",
        "revoke_tokens",
        "block_origin",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        open_reports = models.AbuseReport.objects.filter(
            account=OuterRef("pk"), handled_at__isnull=True
        )
        counts = {
            name: Coalesce(
                _per_account(model, Count("pk")), 0, output_field=IntegerField()
            )
            for name, (model, _label) in RESOURCE_COUNTS.items()
        }
        return (
            super()
            .get_queryset(request)
            .annotate(
                workers_joined=_per_account(
                    models.WorkerScript, StringAgg("name", Value(", "), order_by="name")
                ),
                has_open_reports=Exists(open_reports),
                **counts,
            )
        )

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if term.startswith(tokens.API_TOKEN_PREFIX):
            # A pasted token finds its account by the visible prefix alone.
            prefix = tokens.visible_prefix(term)
            return queryset.filter(tokens__prefix__startswith=prefix), True
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts come from provisioning

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # "purge now" deletes, with everything the account holds

    # -- columns --

    @admin.display(description="state", ordering="state")
    def state_shown(self, account: models.CloudAccount) -> str:
        if account.state == State.SUSPENDED:
            return f"Suspended (was {account.state_before_suspension})"
        status = claims.account_claim_status(
            account=account, user=None, now=timezone.now()
        )
        label = claims.claim_page(status).label
        return f"{label}, purged" if account.purged_at else label

    @admin.display(description="Workers")
    def worker_names(self, account: "_ListedAccount") -> str:
        return account.workers_joined or "—"

    @admin.display(description="resources")
    def resources(self, account: models.CloudAccount) -> str:
        held = [
            f"{getattr(account, name)} {label}"
            for name, (_model, label) in RESOURCE_COUNTS.items()
            if getattr(account, name)
        ]
        return " · ".join(held) or "—"

    @admin.display(description="deadline", ordering="claim_expires_at")
    def deadline(self, account: models.CloudAccount) -> str:
        now = timezone.now()
        if account.state == State.CLAIMED or account.purged_at:
            return "—"
        moment = f"{account.claim_expires_at:%Y-%m-%d %H:%M}"
        if account.claim_expires_at > now:
            return f"{moment} (in {timeuntil(account.claim_expires_at, now)})"
        return f"{moment} ({timesince(account.claim_expires_at, now)} ago)"

    @admin.display(description="origin")
    def origin(self, account: models.CloudAccount) -> str:
        return _short(account.origin_hash)

    @admin.display(description="open reports", boolean=True)
    def reported(self, account: "_ListedAccount") -> bool:
        return account.has_open_reports

    # -- one click on the account's own page --

    ONE_CLICK = {
        "suspend": "Suspend",
        "unsuspend": "Unsuspend",
        "extend_claim_window": "Extend claim window…",
        "expire_now": "Expire now",
        "purge_now": "Purge now…",
        "revoke_tokens": "Revoke tokens",
        "block_origin": "Block origin…",
    }

    def get_urls(self):
        act = self.admin_site.admin_view(self.act_view)
        return [
            path("<str:object_id>/act/<str:action>/", act, name="accounts_act"),
            *super().get_urls(),
        ]

    def act_view(self, request: HttpRequest, object_id: str, action: str):
        """Run one action on one account, from the buttons on its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        found = self.get_actions(request).get(action)
        if action not in self.ONE_CLICK or found is None:
            raise PermissionDenied
        response = found.func(
            self, request, self.get_queryset(request).filter(pk=object_id)
        )
        return response or redirect(
            reverse("admin:accounts_cloudaccount_change", args=[object_id])
        )

    def change_view(
        self, request: HttpRequest, object_id, form_url="", extra_context=None
    ):
        account = self.get_object(request, unquote(object_id))
        # Suspend and unsuspend are one button; the services refuse the rest
        # when the state does not allow them, and say why.
        suspended = account is not None and account.state == State.SUSPENDED
        allowed = set(self.get_actions(request)) - {
            "suspend" if suspended else "unsuspend"
        }
        extra_context = {
            **(extra_context or {}),
            "moderation_actions": [
                (reverse("admin:accounts_act", args=[object_id, name]), label)
                for name, label in self.ONE_CLICK.items()
                if name in allowed
            ],
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # -- actions --

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        done: str,
        act: Callable[[str, datetime], Any],
    ) -> None:
        """Apply ``act`` to each account; one message for the successes and
        one per refusal, saying why."""
        now = timezone.now()
        succeeded = []
        for account_id, name in queryset.values_list("pk", "name"):
            try:
                act(account_id, now)
            except DomainError as refused:
                self.message_user(
                    request, f"{name}: {refused.message}", messages.WARNING
                )
            else:
                succeeded.append(name)
        if succeeded:
            self.message_user(
                request, f"{done}: {', '.join(succeeded)}.", messages.SUCCESS
            )

    def _with_form(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        form_class: type[forms.Form],
        title: str,
        submit: str,
        apply: Callable[[dict], None],
    ) -> TemplateResponse | None:
        """An action that asks first: shows ``form`` for the selected accounts,
        and applies once it comes back valid."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            apply(form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.model._meta,
            "accounts": queryset.values_list("pk", "name", "state"),
            "form": form,
            "action": action,
            "submit": submit,
        }
        return TemplateResponse(
            request, "admin/accounts/cloudaccount/action_form.html", context
        )

    suspend = _one_click(
        moderation.suspend_account,
        done="Suspended",
        description="Suspend: previews stop, tokens refused, claim blocked",
    )
    unsuspend = _one_click(
        moderation.unsuspend_account, done="Unsuspended", description="Unsuspend"
    )
    expire_now = _one_click(
        moderation.expire_account_now,
        done="Expired",
        description="Expire now (the next purge deletes the data)",
    )
    revoke_tokens = _one_click(
        moderation.revoke_account_tokens,
        done="Tokens revoked",
        description="Revoke all API tokens",
    )

    @admin.action(description="Extend the claim window…", permissions=["change"])
    def extend_claim_window(self, request: HttpRequest, queryset: QuerySet):
        def apply(data: dict) -> None:
            self._each(
                request,
                queryset,
                f"Extended by {data['minutes']} min",
                lambda pk, now: moderation.extend_claim_window(
                    account_id=pk,
                    actor=_moderator(request),
                    now=now,
                    by=timedelta(minutes=data["minutes"]),
                ),
            )

        return self._with_form(
            request,
            queryset,
            action="extend_claim_window",
            form_class=ExtendForm,
            title="Extend the claim window",
            submit="Extend",
            apply=apply,
        )

    @admin.action(
        description="Purge now: delete everything it holds…", permissions=["change"]
    )
    def purge_now(self, request: HttpRequest, queryset: QuerySet):
        def purge_one(pk: str, now: datetime) -> None:
            account = models.CloudAccount.objects.get(pk=pk)
            purge.purge_account_now(account=account, now=now, actor=_moderator(request))

        return self._with_form(
            request,
            queryset,
            action="purge_now",
            form_class=ConfirmForm,
            title="Purge now: delete these accounts' Workers, data and files",
            submit="Yes, delete everything they hold",
            apply=lambda _data: self._each(request, queryset, "Purged", purge_one),
        )

    @admin.action(
        description="Block the origin from provisioning…", permissions=["change"]
    )
    def block_origin(self, request: HttpRequest, queryset: QuerySet):
        def apply(data: dict) -> None:
            self._each(
                request,
                queryset,
                "Origin blocked",
                lambda pk, now: moderation.block_account_origin(
                    account_id=pk,
                    actor=_moderator(request),
                    now=now,
                    reason=data["reason"],
                    expires_at=now + timedelta(days=data["days"])
                    if data["days"]
                    else None,
                ),
            )

        return self._with_form(
            request,
            queryset,
            action="block_origin",
            form_class=BlockOriginForm,
            title="Block where these accounts came from",
            submit="Block",
            apply=apply,
        )


# --- Abuse reports ----------------------------------------------------------------


class HandledFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("handled", "Handled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("open", "handled"):
            return queryset.filter(handled_at__isnull=self.value() == "open")
        return queryset


@admin.register(models.AbuseReport)
class AbuseReportAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "account_shown",
        "summary",
        "contact_email",
        "handled",
        "handled_by",
    ]
    list_filter = [HandledFilter]
    list_select_related = ["account", "handled_by"]
    search_fields = ["=account__id", "account__subdomain", "reason", "contact_email"]
    readonly_fields = [
        "account",
        "reason",
        "contact_email",
        "origin_hash",
        "created_at",
        "handled_at",
        "handled_by",
    ]
    actions = ["mark_handled"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reports come from the public form

    @admin.display(description="account", ordering="account__subdomain")
    def account_shown(self, report: models.AbuseReport) -> str:
        return _account_link(report.account_id, report.account.subdomain)

    @admin.display(description="reason")
    def summary(self, report: models.AbuseReport) -> str:
        return report.reason if len(report.reason) <= 120 else report.reason[:119] + "…"

    @admin.display(description="handled", boolean=True, ordering="handled_at")
    def handled(self, report: models.AbuseReport) -> bool:
        return report.handled_at is not None

    @admin.action(description="Mark handled", permissions=["change"])
    def mark_handled(self, request: HttpRequest, queryset: QuerySet) -> None:
        closed = reports.mark_reports_handled(
            report_ids=list(queryset.values_list("pk", flat=True)),
            actor=_moderator(request),
            now=timezone.now(),
        )
        self.message_user(request, f"{closed} report(s) marked handled.")


# --- Events and the blocklist: what provisioning reads ----------------------------


class EventForm(forms.ModelForm):
    class Meta:
        model = models.Event
        fields = [
            "code",
            "name",
            "starts_at",
            "ends_at",
            "claim_window",
            "quota",
            "disabled",
        ]

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        if not EVENT_CODE.fullmatch(code):
            raise forms.ValidationError(
                "Letters, digits, '.', '_' and '-', starting with a letter or digit."
            )
        return code

    def clean_claim_window(self) -> timedelta:
        window = self.cleaned_data["claim_window"]
        if window <= timedelta(0):
            raise forms.ValidationError("The claim window must be longer than zero.")
        return window

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The event must end after it starts.")
        return data


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    form = EventForm
    list_display = [
        "code",
        "name",
        "starts_at",
        "ends_at",
        "claim_window",
        "quota",
        "accounts",
        "seats_left",
        "disabled",
    ]
    list_filter = ["disabled"]
    search_fields = ["code", "name"]
    readonly_fields = ["accounts_created", "created_at"]
    actions = ["disable", "enable"]

    @admin.display(description="accounts made", ordering="accounts_created")
    def accounts(self, event: models.Event) -> str:
        url = reverse("admin:accounts_cloudaccount_changelist")
        return format_html(
            '<a href="{}?event__id__exact={}">{}</a>',
            url,
            event.pk,
            event.accounts_created,
        )

    @admin.display(description="seats left")
    def seats_left(self, event: models.Event) -> int:
        return event.seats_left

    @admin.action(description="Disable: no new accounts", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = moderation.set_events_disabled(
            event_ids=list(queryset.values_list("pk", flat=True)), disabled=True
        )
        self.message_user(request, f"{changed} event(s) disabled.")

    @admin.action(description="Enable", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = moderation.set_events_disabled(
            event_ids=list(queryset.values_list("pk", flat=True)), disabled=False
        )
        self.message_user(request, f"{changed} event(s) enabled.")


class BlockedOriginForm(forms.ModelForm):
    class Meta:
        model = models.BlockedOrigin
        fields = ["network", "origin_hash", "reason", "expires_at"]

    def clean_network(self) -> str:
        network = self.cleaned_data["network"].strip()
        if network:
            try:
                network = str(ipaddress.ip_network(network, strict=False))
            except ValueError as error:
                raise forms.ValidationError(
                    "Give an IP address or a CIDR such as 203.0.113.0/24."
                ) from error
        return network

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("network") and not data.get("origin_hash"):
            raise forms.ValidationError("Give a network, an origin hash, or both.")
        return data


@admin.register(models.BlockedOrigin)
class BlockedOriginAdmin(admin.ModelAdmin):
    form = BlockedOriginForm
    list_display = ["blocked", "reason", "created_at", "expires_at", "active"]
    search_fields = ["network", "origin_hash", "reason"]

    @admin.display(description="network or origin")
    def blocked(self, entry: models.BlockedOrigin) -> str:
        return entry.network or f"origin {_short(entry.origin_hash)}"

    @admin.display(description="in force", boolean=True)
    def active(self, entry: models.BlockedOrigin) -> bool:
        return entry.expires_at is None or entry.expires_at > timezone.now()


# --- The product's own records ----------------------------------------------------


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "account_shown", "actor_label", "summary"]
    list_filter = ["kind"]
    search_fields = ["=account_ref", "actor_label"]
    date_hierarchy = "created_at"

    @admin.display(description="account", ordering="account_ref")
    def account_shown(self, event: models.AuditEvent) -> str:
        if event.account_id is None:
            return f"{event.account_ref} (deleted)"
        return _account_link(event.account_id, event.account_ref)

    @admin.display(description="details")
    def summary(self, event: models.AuditEvent) -> str:
        return format_html_join(
            ", ", "{}={}", ((key, value) for key, value in event.details.items())
        )


@admin.register(models.ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "account", "kind", "created_at", "revoked_at"]
    list_select_related = ["account"]
    search_fields = ["^prefix", "=account__id"]
    exclude = ["secret_hash"]


@admin.register(models.ClaimLink)
class ClaimLinkAdmin(ReadOnlyAdmin):
    list_display = ["account", "state", "deadline", "used_at", "used_by"]
    list_select_related = ["account", "used_by"]
    exclude = ["key_hash"]


@admin.register(models.PurgeRun)
class PurgeRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "accounts",
        "resources",
        "bytes_deleted",
        "max_lag_seconds",
        "finished_at",
    ]
