"""The inventory: everything an account holds, read in a fixed number of queries."""

import pytest
from django.db import DataError, connection
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone

from accounts import inventory_html, selectors
from accounts.models import WorkerVersion, version_summary
from accounts.services import kv, workers
from tests.claim_builders import add_resources, full_deploy

pytestmark = pytest.mark.django_db

# The inventory's two statements go to PostgreSQL together, as one query.
INVENTORY_QUERIES = 1
# The link with its account (the key is in a cookie), the inventory, each
# Worker's modules and recent events, and which runtime holds the account (to
# ask it about the previews): all sent together, found through the link.
CLAIM_PAGE_QUERIES = 1


def test_the_inventory_names_every_resource_and_where_bindings_point(provision):
    account = provision().account
    full_deploy(account)

    found = selectors.inventory(account=account)

    (worker,) = found.workers
    assert worker.preview_url == (
        f"http://hello-worker.{account.subdomain}.preview.localhost:8000"
    )
    assert worker.compatibility_date == "2026-11-01"
    assert worker.compatibility_flags == ["nodejs_compat"]
    assert (worker.asset_files, worker.asset_bytes) == (3, 3048)
    assert worker.var_names == ["GREETING", "LIMITS"]
    assert worker.secret_names == ["API_TOKEN", "SIGNING_KEY"]
    targets = {b.name: (b.kind, b.target) for b in worker.bindings}
    assert targets["CACHE"] == ("KV namespace", "hello-worker-cache")
    assert targets["DB"] == ("D1 database", "hello-worker-db")
    assert targets["PG"] == ("Hyperdrive", "hello-worker-pg")
    assert targets["CERT"] == ("mTLS certificate", "hello-worker-cert")
    assert targets["JOBS"] == ("Queue producer", "hello-worker-jobs")
    assert targets["GREETING"] == ("Variable", "")
    assert targets["SIGNING_KEY"] == ("Secret", "")
    assert [(kv.name, kv.key_count) for kv in found.kv_namespaces] == [
        ("hello-worker-cache", 3)
    ]
    assert [(q.name, q.producers, q.consumers) for q in found.queues] == [
        ("hello-worker-jobs", ["hello-worker"], ["hello-worker"])
    ]
    assert [(d.name, d.script) for d in found.durable_objects] == [
        ("Counter", "hello-worker")
    ]
    (hd,) = found.hyperdrive_configs
    assert (hd.host, hd.port, hd.database, hd.user) == (
        "db.example.com",
        5432,
        "shop",
        "app",
    )
    assert found.resource_count == 7


def test_a_worker_without_a_preview_host_has_no_preview_link(provision):
    account = provision().account
    full_deploy(account).__class__.objects.update(workers_dev_enabled=False)

    assert selectors.inventory(account=account).workers[0].preview_url is None


def test_inventories_keep_accounts_apart(provision, django_assert_num_queries):
    first, second = provision().account, provision().account
    full_deploy(first, name="one")
    add_resources(second, 12)

    with django_assert_num_queries(INVENTORY_QUERIES):
        found = selectors.inventories(accounts=[first, second])

    assert [w.name for w in found[first.pk].workers] == ["one"]
    assert found[second.pk].resource_count == 12
    assert "one" not in {w.name for w in found[second.pk].workers}


def by_id(account) -> selectors.Accounts:
    return selectors.Accounts.by_id([account.pk])


def test_reads_sent_together_each_get_their_own_rows(
    provision, django_assert_num_queries
):
    first, second = provision().account, provision().account
    full_deploy(first, name="one")
    add_resources(second, 12)
    apart = (
        selectors.inventories(accounts=[second]),
        selectors.worker_activity(account=first),
        selectors.inventories(accounts=[first]),
    )

    with django_assert_num_queries(1):
        together = selectors.read_together(
            selectors.inventories_read(accounts=by_id(second)),
            selectors.worker_activity_read(account=by_id(first)),
            selectors.inventories_read(accounts=selectors.Accounts.by_id([])),
            selectors.inventories_read(accounts=by_id(first)),
        )

    assert together == [apart[0], apart[1], {}, apart[2]]
    assert [w.name for w in together[1]] == ["one"]
    assert together[0][second.pk].resource_count == 12


@pytest.mark.django_db(transaction=True)  # to start a new connection
@pytest.mark.parametrize("resources", [1, 100])
def test_the_claim_page_costs_one_query_however_much_it_holds(
    client, provision, django_assert_num_queries, resources
):
    made = provision()
    add_resources(made.account, resources)
    assert selectors.inventory(account=made.account).resource_count == resources
    client.get(reverse("accounts:claim", args=[made.claim_key]))
    connection.close()  # a new connection: the page prepares its statements

    with django_assert_num_queries(CLAIM_PAGE_QUERIES) as first:
        response = client.get(reverse("accounts:claim_review"))
    with django_assert_num_queries(CLAIM_PAGE_QUERIES) as again:
        repeat = client.get(reverse("accounts:claim_review"))

    (sent,) = [q["sql"] for q in first.captured_queries]
    for table in (
        "accounts_claimlink",  # the link with its account
        "accounts_kvnamespace",  # the inventory
        "accounts_workerevent",  # the Workers' recent events
        "accounts_previewplacement",  # which runtime to ask about previews
    ):
        assert table in sent, table
    # Prepared once per connection, run by name from then on.
    (sent_again,) = [q["sql"] for q in again.captured_queries]
    assert "PREPARE" not in sent_again
    assert sent_again.count("EXECUTE") == sent.count("EXECUTE") == 6
    assert response.status_code == repeat.status_code == 200
    assert response.content.count(b"<tr>") >= resources
    assert repeat.content == response.content


@pytest.mark.django_db(transaction=True)  # to start a new connection
def test_reads_are_prepared_once_per_connection_and_again_after_a_failure(
    provision, django_assert_num_queries
):
    account = provision().account
    full_deploy(account)
    read = selectors.inventories_read(accounts=by_id(account))
    failing = selectors.Read([("SELECT 1 / %(zero)s", {"zero": 0})], list)
    connection.close()

    def sent(*reads: selectors.Read) -> str:
        with django_assert_num_queries(1) as sending:
            found = selectors.read_together(*reads)
        assert found[0][account.pk].workers[0].name == "hello-worker"
        return sending.captured_queries[0]["sql"]

    assert sent(read).count("PREPARE") == 2
    assert "PREPARE" not in sent(read)
    with pytest.raises(DataError):
        selectors.read_together(read, failing)
    # What the failed text prepared is not known: all are made anew.
    assert sent(read).startswith("DEALLOCATE ALL")
    assert "PREPARE" not in sent(read)
    connection.close()
    assert sent(read).count("PREPARE") == 2


@pytest.mark.django_db(transaction=True)  # to start a new connection
def test_reads_of_three_and_of_four_accounts_share_their_statements(
    provision, django_assert_num_queries
):
    """Each number of accounts was a statement prepared anew on every
    connection that met it; the numbers are padded to a power of two."""
    accounts = [provision().account for _ in range(5)]
    for account in accounts:
        full_deploy(account)
    ids = lambda some: {account.pk for account in some}  # noqa: E731
    connection.close()
    assert set(selectors.inventories(accounts=accounts[:3])) == ids(accounts[:3])
    with django_assert_num_queries(1) as sending:
        found = selectors.inventories(accounts=accounts[:4])
    assert "PREPARE" not in sending.captured_queries[0]["sql"]
    assert [len(found[account.pk].workers) for account in accounts[:4]] == [1] * 4
    with django_assert_num_queries(1) as sending:
        assert set(selectors.inventories(accounts=accounts)) == ids(accounts)
    assert "PREPARE" in sending.captured_queries[0]["sql"]  # 5: the next size


def test_the_claim_page_shows_a_change_at_once(client, provision):
    made = provision()
    full_deploy(made.account)
    client.get(reverse("accounts:claim", args=[made.claim_key]))
    assert b"late-namespace" not in client.get(reverse("accounts:claim_review")).content

    namespace = kv.create_namespace(
        account=made.account, title="late-namespace", now=timezone.now()
    )
    assert b"<td>late-namespace</td><td>0</td>" in (
        client.get(reverse("accounts:claim_review")).content
    )
    kv.put_value(namespace=namespace, key="k", value=b"v", now=timezone.now())
    assert b"<td>late-namespace</td><td>1</td>" in (
        client.get(reverse("accounts:claim_review")).content
    )
    workers.delete_script(
        account=made.account, script_name="hello-worker", now=timezone.now()
    )
    assert b"<code>hello-worker</code>" not in (
        client.get(reverse("accounts:claim_review")).content
    )


def test_the_claim_page_renders_while_the_cache_is_unreachable(
    client, provision, settings
):
    made = provision()
    full_deploy(made.account)
    client.get(reverse("accounts:claim", args=[made.claim_key]))
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        },
    }

    page = client.get(reverse("accounts:claim_review"))

    assert page.status_code == 200
    assert b"<code>hello-worker</code>" in page.content


def test_the_claim_page_shows_every_name_the_agent_chose_as_text(client, provision):
    made = provision()
    script = full_deploy(made.account)
    markup = '<img src=x onerror="alert(1)">'
    account = made.account
    account.kv_namespaces.update(title=f"kv{markup}")
    account.d1_databases.update(name=f"db{markup}")
    account.queues.update(name=f"queue{markup}")
    account.hyperdrive_configs.update(
        name=f"pg{markup}",
        origin={"host": markup, "port": 5432, "database": markup, "user": markup},
    )
    account.certificates.update(name=f"cert{markup}", issuer=markup)
    account.durable_object_namespaces.update(class_name=f"Do{markup}")
    script.secrets.update(name=f"SECRET{markup}")
    version = script.current_version
    version.compatibility_flags = [markup]
    version.bindings = [
        {"type": "plain_text", "name": f"VAR{markup}", "text": "x"},
        {"type": f"odd{markup}", "name": f"ODD{markup}"},
    ]
    summary = version_summary(bindings=version.bindings, assets=version.assets)
    WorkerVersion.objects.filter(pk=version.pk).update(
        compatibility_flags=version.compatibility_flags,
        bindings=version.bindings,
        **summary,
    )
    script.cron_schedules = [markup]
    script.save(update_fields=["cron_schedules"])
    client.get(reverse("accounts:claim", args=[made.claim_key]))

    page = client.get(reverse("accounts:claim_review")).content.decode()

    assert "<img" not in page
    escaped = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    for shown in ("kv", "db", "queue", "pg", "cert", "Do", "SECRET", "VAR", "ODD"):
        assert f"{shown}{escaped}" in page, shown
    # host, database, user, issuer, the flag, the schedule and the binding type
    assert page.count(escaped) >= 9 + 7


@pytest.mark.parametrize(
    "size", [0, 1, 2, 1023, 1024, 1075, 3048, 10**6, 2**20 - 1, 2**20, 5 * 2**40, 2**53]
)
def test_sizes_read_as_the_template_filter_writes_them(size):
    assert inventory_html._size(size) == filesizeformat(size)
    assert inventory_html._size(-size) == filesizeformat(-size)
