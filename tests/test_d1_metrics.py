"""D1 metrics: recorded per database and SQL text, and answered to the GraphQL
queries of wrangler d1 info and d1 insights (their exact text)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services.claims import confirm_claim
from tests.cloudapi import AccountClient, error_code, ok

pytestmark = pytest.mark.django_db

INFO = """query getD1MetricsOverviewQuery($accountTag: string,
    $filter: ZoneWorkersRequestsFilter_InputObject) {
    viewer { accounts(filter: {accountTag: $accountTag}) {
        d1AnalyticsAdaptiveGroups(limit: 10000, filter: $filter) {
            sum { readQueries writeQueries rowsRead rowsWritten }
            dimensions { datetimeHour }
        } } } }"""
INSIGHTS = """query getD1QueriesOverviewQuery($accountTag: string,
    $filter: ZoneWorkersRequestsFilter_InputObject) {
    viewer { accounts(filter: {accountTag: $accountTag}) {
        d1QueriesAdaptiveGroups(limit: 5, filter: $filter,
            orderBy: [sum_queryDurationMs_DESC]) {
            sum { queryDurationMs rowsRead rowsWritten rowsReturned }
            avg { queryDurationMs rowsRead rowsWritten rowsReturned }
            count
            dimensions { query databaseId }
        } } } }"""


@pytest.fixture
def api(client, provision) -> AccountClient:
    return AccountClient(client, provision())


def graphql(client, api, query, database_id=""):
    now = datetime.now(UTC)
    condition = {
        "datetimeHour_geq": (now - timedelta(days=1)).isoformat(),
        "datetimeHour_leq": now.isoformat(),
    }
    if database_id:
        condition["databaseId"] = database_id
    body = {
        "query": query,
        "variables": {"accountTag": api.account.id, "filter": {"AND": [condition]}},
    }
    return client.post(
        "/client/v4/graphql",
        data=json.dumps(body),
        content_type="application/json",
        **api.auth,
    )


def test_queries_are_counted_and_answered_as_wrangler_asks(client, api):
    db = ok(api.post("d1/database", {"name": "metered"}))
    other = ok(api.post("d1/database", {"name": "other"}))
    path = f"d1/database/{db['uuid']}/query"
    ok(api.post(path, {"sql": "CREATE TABLE t (x)"}))
    ok(api.post(path, {"sql": "INSERT INTO t VALUES (1), (2), (3)"}))
    for _ in range(2):
        ok(api.post(path, {"sql": "SELECT x FROM t"}))
    ok(api.post(f"d1/database/{other['uuid']}/query", {"sql": "SELECT 1"}))

    info = graphql(client, api, INFO, db["uuid"]).json()
    [hour] = info["data"]["viewer"]["accounts"][0]["d1AnalyticsAdaptiveGroups"]
    assert hour["sum"] == {
        "readQueries": 2,
        "writeQueries": 2,
        "rowsRead": 9,  # as each call's meta says: the INSERT's 3, then 3 + 3
        "rowsWritten": 3,
    }
    assert set(hour) == {"sum", "dimensions"}

    insights = graphql(client, api, INSIGHTS).json()
    groups = insights["data"]["viewer"]["accounts"][0]["d1QueriesAdaptiveGroups"]
    select = next(g for g in groups if g["dimensions"]["query"] == "SELECT x FROM t")
    assert select["count"] == 2
    assert select["sum"]["rowsReturned"] == 6
    assert select["avg"]["rowsReturned"] == 3
    assert select["dimensions"]["databaseId"] == db["uuid"]
    assert {g["dimensions"]["databaseId"] for g in groups} == {
        db["uuid"],
        other["uuid"],
    }


def test_a_database_id_that_is_no_uuid_matches_no_database(client, api):
    db = ok(api.post("d1/database", {"name": "metered"}))
    ok(api.post(f"d1/database/{db['uuid']}/query", {"sql": "SELECT 1"}))
    answer = graphql(client, api, INFO, "not-a-uuid")
    assert answer.status_code == 200
    groups = answer.json()["data"]["viewer"]["accounts"][0]
    assert groups["d1AnalyticsAdaptiveGroups"] == []


@pytest.mark.parametrize(
    "selection",
    [
        "",  # viewer with no fields under it
        " { accounts(filter: {accountTag: $accountTag}) "
        "{ d1AnalyticsAdaptiveGroups(limit: 5) { sum } } }",
    ],
)
def test_a_leaf_where_fields_belong_is_refused_in_the_envelope(client, api, selection):
    db = ok(api.post("d1/database", {"name": "metered"}))
    ok(api.post(f"d1/database/{db['uuid']}/query", {"sql": "SELECT 1"}))
    query = f"query q($accountTag: string) {{ viewer{selection} }}"
    refused = graphql(client, api, query)
    assert refused.status_code == 400
    assert error_code(refused) == 10060


def test_other_graphql_is_refused_in_the_envelope(client, api):
    refused = graphql(
        client, api, "query { viewer { zones { httpRequests1dGroups { count } } } }"
    )
    assert refused.status_code == 400
    assert error_code(refused) == 10060
    assert "d1 insights" in refused.json()["errors"][0]["message"]
    broken = graphql(client, api, "query {")
    assert error_code(broken) == 10001


def test_the_owners_account_page_shows_the_same_figures(client, provision, user):

    made = provision()
    api = AccountClient(client, made)
    db = ok(api.post("d1/database", {"name": "metered"}))
    for sql in (
        "CREATE TABLE t (x)",
        "INSERT INTO t VALUES (1), (2)",
        "SELECT x FROM t",
    ):
        ok(api.post(f"d1/database/{db['uuid']}/query", {"sql": sql}))
    confirm_claim(
        key=made.claim_key, account_id=made.account.pk, user=user, now=timezone.now()
    )
    client.force_login(user)
    page = client.get(reverse("accounts:account", args=[made.account.pk]))
    html = page.content.decode()
    assert "D1 usage, last 24 hours" in html
    assert "<td>metered</td><td>3</td><td>4</td><td>2</td>" in html
