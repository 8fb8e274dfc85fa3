from django.urls import path, re_path

from . import accounts, kv

ACCOUNT = "accounts/<str:account_id>/"
KV = ACCOUNT + "storage/kv/namespaces"

urlpatterns = [
    path("accounts", accounts.accounts, name="api-accounts"),
    # Data: KV, D1, Queues, Hyperdrive, certificates, R2 (refused).
    path(KV, kv.namespaces, name="api-kv-namespaces"),
    path(KV + "/<str:namespace_id>", kv.namespace, name="api-kv-namespace"),
    # Everything else under client/v4 answers in the envelope, never with HTML.
    re_path(r"^(?P<path>.*)$", accounts.unknown_route, name="api-unknown"),
]
