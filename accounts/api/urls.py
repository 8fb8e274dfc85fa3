from django.urls import path, re_path

from . import accounts, kv, openapi, provisioning

ACCOUNT = "accounts/<str:account_id>/"
KV = ACCOUNT + "storage/kv/namespaces"
PREVIEWS = "provisioning/previews"

urlpatterns = [
    path("accounts", accounts.accounts, name="api-accounts"),
    # Provisioning: temporary accounts for unauthenticated callers.
    path(PREVIEWS, provisioning.previews, name="api-provisioning-previews"),
    path(
        PREVIEWS + "/challenge",
        provisioning.challenge,
        name="api-provisioning-challenge",
    ),
    path(
        PREVIEWS + "/<str:account_id>",
        provisioning.preview_status,
        name="api-provisioning-status",
    ),
    path("openapi.json", openapi.openapi_json, name="api-openapi"),
    # Data: KV, D1, Queues, Hyperdrive, certificates, R2 (refused).
    path(KV, kv.namespaces, name="api-kv-namespaces"),
    path(KV + "/<str:namespace_id>", kv.namespace, name="api-kv-namespace"),
    path(KV + "/<str:namespace_id>/values/<path:key>", kv.values, name="api-kv-value"),
    path(
        KV + "/<str:namespace_id>/metadata/<path:key>",
        kv.metadata,
        name="api-kv-metadata",
    ),
    path(KV + "/<str:namespace_id>/keys", kv.keys, name="api-kv-keys"),
    path(KV + "/<str:namespace_id>/bulk", kv.bulk, name="api-kv-bulk"),
    path(KV + "/<str:namespace_id>/bulk/get", kv.bulk_get, name="api-kv-bulk-get"),
    path(
        KV + "/<str:namespace_id>/bulk/delete",
        kv.bulk_delete,
        name="api-kv-bulk-delete",
    ),
    # Everything else under client/v4 answers in the envelope, never with HTML.
    re_path(r"^(?P<path>.*)$", accounts.unknown_route, name="api-unknown"),
]
