"""Migration 0009: versions stored before it get the summary a deploy writes."""

import pytest
from django.utils import timezone

from accounts import selectors
from accounts.models import CloudAccount
from tests.migrating import migrate, migrate_to_latest

BEFORE = [("accounts", "0008_preview_placement")]
AFTER = [("accounts", "0009_version_summary")]


@pytest.fixture
def at_0008(transactional_db):
    yield migrate(BEFORE)
    migrate_to_latest()


def test_stored_versions_show_their_bindings_and_assets_after_it(at_0008):
    account = at_0008.get_model("accounts", "CloudAccount").objects.create(
        name="before", subdomain="before", claim_expires_at=timezone.now()
    )
    script = at_0008.get_model("accounts", "WorkerScript").objects.create(
        account=account, name="old-worker"
    )
    namespace = at_0008.get_model("accounts", "KVNamespace").objects.create(
        account=account, title="old-cache"
    )
    version = at_0008.get_model("accounts", "WorkerVersion").objects.create(
        script=script,
        number=1,
        bindings=[
            {"type": "plain_text", "name": "GREETING", "text": "never shown"},
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": namespace.id},
        ],
        assets={"manifest": {"/a": {"size": 10}, "/b": {"size": 5}}},
    )
    script.current_version = version
    script.save()

    migrate(AFTER)

    (worker,) = selectors.inventory(
        account=CloudAccount.objects.get(pk=account.pk)
    ).workers
    assert [(b.name, b.kind, b.target) for b in worker.bindings] == [
        ("GREETING", "Variable", ""),
        ("CACHE", "KV namespace", "old-cache"),
    ]
    assert worker.var_names == ["GREETING"]
    assert (worker.asset_files, worker.asset_bytes) == (2, 15)
