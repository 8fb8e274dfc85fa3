"""``POST /client/v4/graphql``: the D1 analytics queries ``wrangler d1 info`` and
``wrangler d1 insights`` send, answered from the recorded metrics with only the
fields they ask for. Any other GraphQL is refused in the envelope."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from graphql.utilities import value_from_ast_untyped

from accounts.exceptions import GraphQLNotSupported, InvalidInput
from accounts.services import metrics

from .inputs import Input, JSONObject, Text
from .kit import ApiRequest, endpoint, operation

GROUPS = {"d1AnalyticsAdaptiveGroups", "d1QueriesAdaptiveGroups"}
SUMS = {
    "readQueries": "read_queries",
    "writeQueries": "write_queries",
    "rowsRead": "rows_read",
    "rowsWritten": "rows_written",
    "rowsReturned": "rows_returned",
    "queryDurationMs": "duration_ms",
}


def _fields(node: OperationDefinitionNode | FieldNode) -> list[FieldNode]:
    """The fields selected in ``node``; a leaf where the queries we answer select
    fields is a query we do not answer."""
    if node.selection_set is None:
        raise GraphQLNotSupported()
    return [s for s in node.selection_set.selections if isinstance(s, FieldNode)]


def _only(node: OperationDefinitionNode | FieldNode, name: str) -> FieldNode:
    fields = _fields(node)
    if len(fields) != 1 or fields[0].name.value != name:
        raise GraphQLNotSupported()
    return fields[0]


def _args(field: FieldNode, variables: dict[str, Any]) -> dict[str, Any]:
    return {
        a.name.value: value_from_ast_untyped(a.value, variables)
        for a in field.arguments or ()
    }


def _moment(value: Any, default: datetime) -> datetime:
    if not isinstance(value, str):
        return default
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not a time.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class GraphQLRequest(Input):
    """A GraphQL request as ``wrangler d1 info`` and ``d1 insights`` send it."""

    unknown = "ignore"  # GraphQL over HTTP may add "extensions"
    # Any string: the GraphQL parser refuses what is not a query.
    query = Text(required=True, storable=False)
    variables = JSONObject(default={})
    operation_name = Text(key="operationName", max_length=256)


@operation(
    "D1 analytics (d1AnalyticsAdaptiveGroups, d1QueriesAdaptiveGroups) as "
    "wrangler d1 info and d1 insights ask; answers {data, errors}. Other "
    "GraphQL is refused (code 10060).",
    tag="d1",
    body=GraphQLRequest,
    raw={"application/json": {"schema": {"type": "object"}}},
)
def _graphql(request: ApiRequest, *, body: GraphQLRequest) -> HttpResponse:
    variables = body.variables
    try:
        document = parse(body.query)
    except GraphQLError as exc:
        raise InvalidInput(f"The GraphQL query does not parse: {exc.message}") from exc
    operations = [
        d for d in document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    if len(operations) != 1:
        raise GraphQLNotSupported()
    viewer = _only(operations[0], "viewer")
    accounts = _only(viewer, "accounts")
    if _name(accounts) not in GROUPS:
        raise GraphQLNotSupported()
    group = _only(accounts, _name(accounts))
    tag = (_args(accounts, variables).get("filter") or {}).get("accountTag")
    if tag != request.cloud_account.id:
        raise GraphQLNotSupported("The query must name this token's account.")
    args = _args(group, variables)
    conditions = (args.get("filter") or {}).get("AND") or [{}]
    condition = conditions[0] if isinstance(conditions[0], dict) else {}
    now = timezone.now()
    rows = metrics.stats(
        account_id=request.cloud_account.id,
        since=_moment(condition.get("datetimeHour_geq"), now - timedelta(days=1)),
        until=_moment(condition.get("datetimeHour_leq"), now),
        database_id=str(condition.get("databaseId") or ""),
    )
    by_query = group.name.value == "d1QueriesAdaptiveGroups"
    buckets: dict[tuple, dict[str, Any]] = defaultdict(
        lambda: {"count": 0, **dict.fromkeys(SUMS.values(), 0)}
    )
    for row in rows:
        key = (row.query, str(row.database_id)) if by_query else (row.hour,)
        bucket = buckets[key]
        bucket["count"] += row.count
        for column in SUMS.values():
            bucket[column] += getattr(row, column)
    ordered = sorted(buckets.items(), key=lambda item: -item[1]["count"])
    limit = args.get("limit")
    if not isinstance(limit, int):
        limit = 10000
    answer = [
        _shape(group, key, bucket, by_query) for key, bucket in ordered[: max(limit, 0)]
    ]
    data = {"viewer": {"accounts": [{group.name.value: answer}]}}
    return JsonResponse({"data": data, "errors": None})


def _name(node: FieldNode) -> str:
    fields = _fields(node)
    return fields[0].name.value if len(fields) == 1 else ""


def _shape(
    group: FieldNode, key: tuple, bucket: dict[str, Any], by_query: bool
) -> dict[str, Any]:
    """One group with exactly the fields the query selected."""
    count = bucket["count"] or 1
    out: dict[str, Any] = {}
    for field in _fields(group):
        name = field.name.value
        if name == "count":
            out[name] = bucket["count"]
        elif name in {"sum", "avg"}:
            out[name] = {}
            for sub in _fields(field):
                column = SUMS.get(sub.name.value)
                if column is None:
                    raise GraphQLNotSupported(f"No field {sub.name.value} here.")
                value = bucket[column]
                out[name][sub.name.value] = value if name == "sum" else value / count
        elif name == "dimensions":
            out[name] = {}
            for sub in _fields(field):
                dimension = sub.name.value
                if dimension == "datetimeHour" and not by_query:
                    out[name][dimension] = key[0].isoformat().replace("+00:00", "Z")
                elif dimension in {"query", "databaseId"} and by_query:
                    out[name][dimension] = key[0 if dimension == "query" else 1]
                else:
                    raise GraphQLNotSupported(f"No dimension {dimension} here.")
        else:
            raise GraphQLNotSupported(f"No field {name} here.")
    return out


graphql = endpoint()({"POST": _graphql})
