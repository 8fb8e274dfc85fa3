from django.urls import path, re_path

from . import (
    accounts,
    assets,
    certificates,
    d1,
    d1_time_travel,
    event_subscriptions,
    graphql,
    hyperdrive,
    kv,
    not_offered,
    openapi,
    provisioning,
    queues,
    r2,
    workers,
)

ACCOUNT = "accounts/<str:account_id>/"
KV = ACCOUNT + "storage/kv/namespaces"
D1 = ACCOUNT + "d1/database"
D1_DB = D1 + "/<str:database_id>"
CERTIFICATES = ACCOUNT + "mtls_certificates"
HYPERDRIVE = ACCOUNT + "hyperdrive/configs"
QUEUES = ACCOUNT + "queues"
QUEUE = QUEUES + "/<str:queue_id>"
WORKERS = ACCOUNT + "workers/"
SCRIPT = WORKERS + "scripts/<str:script_name>"
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
    path("graphql", graphql.graphql, name="api-graphql"),
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
    path(D1, d1.databases, name="api-d1-databases"),
    path(D1_DB, d1.database, name="api-d1-database"),
    path(D1_DB + "/query", d1.query, name="api-d1-query"),
    path(D1_DB + "/raw", d1.raw, name="api-d1-raw"),
    path(D1_DB + "/import", d1.import_sql, name="api-d1-import"),
    path(
        D1_DB + "/import-upload/<str:token>",
        d1.import_upload,
        name="api-d1-import-upload",
    ),
    path(D1_DB + "/export", d1.export_sql, name="api-d1-export"),
    path(
        D1_DB + "/export-download/<str:token>",
        d1.export_download,
        name="api-d1-export-download",
    ),
    path(
        D1_DB + "/time_travel/bookmark",
        d1_time_travel.bookmark,
        name="api-d1-time-travel-bookmark",
    ),
    path(
        D1_DB + "/time_travel/restore",
        d1_time_travel.restore,
        name="api-d1-time-travel-restore",
    ),
    path(QUEUES, queues.collection, name="api-queues"),
    path(QUEUE, queues.queue, name="api-queue"),
    path(QUEUE + "/consumers", queues.consumers, name="api-queue-consumers"),
    path(
        QUEUE + "/consumers/<str:consumer_id>",
        queues.consumer,
        name="api-queue-consumer",
    ),
    path(QUEUE + "/messages", queues.messages, name="api-queue-messages"),
    path(
        QUEUE + "/messages/batch",
        queues.messages_batch,
        name="api-queue-messages-batch",
    ),
    path(
        QUEUE + "/messages/pull", queues.messages_pull, name="api-queue-messages-pull"
    ),
    path(QUEUE + "/messages/ack", queues.messages_ack, name="api-queue-messages-ack"),
    path(QUEUE + "/purge", queues.purge, name="api-queue-purge"),
    path(
        ACCOUNT + "event_subscriptions/subscriptions",
        event_subscriptions.subscriptions,
        name="api-event-subscriptions",
    ),
    path(
        ACCOUNT + "event_subscriptions/subscriptions/<str:subscription_id>",
        event_subscriptions.subscription,
        name="api-event-subscription",
    ),
    path(HYPERDRIVE, hyperdrive.configs, name="api-hyperdrive-configs"),
    path(
        HYPERDRIVE + "/<str:config_id>",
        hyperdrive.config,
        name="api-hyperdrive-config",
    ),
    path(CERTIFICATES, certificates.collection, name="api-certificates"),
    path(
        CERTIFICATES + "/<str:certificate_id>",
        certificates.certificate,
        name="api-certificate",
    ),
    path(ACCOUNT + "r2/<path:rest>", r2.refused, name="api-r2-refused"),
    path(
        ACCOUNT + "event_notifications/r2/<path:rest>",
        r2.refused,
        name="api-r2-notifications-refused",
    ),
    path(ACCOUNT + "challenges/widgets", not_offered.turnstile, name="api-turnstile"),
    path(
        ACCOUNT + "challenges/widgets/<path:rest>",
        not_offered.turnstile,
        name="api-turnstile-widget",
    ),
    path(ACCOUNT + "containers", not_offered.containers, name="api-containers"),
    path(
        ACCOUNT + "containers/<path:rest>",
        not_offered.containers,
        name="api-containers-rest",
    ),
    path(
        ACCOUNT + "cloudchamber/<path:rest>",
        not_offered.containers,
        name="api-cloudchamber-rest",
    ),
    # Workers: what wrangler deploy calls.
    path(WORKERS + "scripts", workers.scripts, name="api-workers-scripts"),
    path(SCRIPT, workers.script, name="api-workers-script"),
    path(SCRIPT + "/versions", workers.versions, name="api-workers-versions"),
    path(
        SCRIPT + "/versions/<str:version_id>",
        workers.version,
        name="api-workers-version",
    ),
    path(SCRIPT + "/deployments", workers.deployments, name="api-workers-deployments"),
    path(
        SCRIPT + "/script-settings",
        workers.script_settings,
        name="api-workers-script-settings",
    ),
    path(
        SCRIPT + "/settings", workers.script_settings_all, name="api-workers-settings"
    ),
    path(SCRIPT + "/references", workers.references, name="api-workers-references"),
    path(SCRIPT + "/secrets", workers.secrets, name="api-workers-secrets"),
    path(SCRIPT + "/secrets/<path:name>", workers.secret, name="api-workers-secret"),
    path(
        SCRIPT + "/secrets-bulk", workers.secrets_bulk, name="api-workers-secrets-bulk"
    ),
    path(SCRIPT + "/schedules", workers.schedules, name="api-workers-schedules"),
    path(
        SCRIPT + "/subdomain",
        workers.script_subdomain,
        name="api-workers-script-subdomain",
    ),
    path(
        SCRIPT + "/assets-upload-session",
        assets.upload_session,
        name="api-workers-assets-session",
    ),
    path(WORKERS + "assets/upload", assets.upload, name="api-workers-assets-upload"),
    path(
        WORKERS + "services/<str:script_name>",
        workers.service,
        name="api-workers-service",
    ),
    path(
        WORKERS + "workers/<str:script_name>", workers.worker, name="api-workers-worker"
    ),
    path(
        WORKERS + "workers/<str:script_name>/versions/latest",
        workers.latest_version,
        name="api-workers-latest-version",
    ),
    path(SCRIPT + "/tails", workers.tails, name="api-workers-tails"),
    path(SCRIPT + "/tails/<str:tail_id>", workers.tail, name="api-workers-tail"),
    path(
        WORKERS + "subdomain", workers.account_subdomain, name="api-workers-subdomain"
    ),
    path(
        WORKERS + "subdomains/<str:name>",
        workers.subdomain_availability,
        name="api-workers-subdomain-availability",
    ),
    path(
        WORKERS + "tails/by-consumer/<str:script_name>",
        workers.tail_producers,
        name="api-workers-tail-producers",
    ),
    path(
        WORKERS + "durable_objects/namespaces",
        workers.durable_object_namespaces,
        name="api-workers-do-namespaces",
    ),
    # Everything else under client/v4 answers in the envelope, never with HTML.
    # (Newlines too: a path converter never matches one.)
    re_path(r"^(?P<path>[\s\S]*)$", accounts.unknown_route, name="api-unknown"),
]
