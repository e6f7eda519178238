"""OData v2 query options, paging and JSON envelopes, as Exact serves them.

* collections: ``{"d": {"results": [...], "__next": "<absolute url>"}}`` with at most
  60 rows per page; ``__next`` carries ``$skiptoken`` and appears only when more
  rows remain. Rows come in primary-key order (what makes ``$skiptoken=guid'…'``
  work), unless ``$orderby`` says otherwise.
* every row carries ``__metadata`` {uri, type}; line collections are
  ``{"__deferred": {"uri": …}}`` unless ``$expand``-ed into ``{"results": [...]}``.
* dates are ``/Date(ms)/``; amounts are JSON numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from app.sandbox.errors import bad_request
from app.sandbox.filters import Node, collation_key, matches, parse_filter
from app.sandbox.schema import EntitySet
from app.sandbox.values import GUID, INT, normalise_guid, to_wire

PAGE_SIZE = 60
KNOWN_OPTIONS = {"$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$skiptoken", "$inlinecount", "$format"}


@dataclass
class Query:
    filter: Node | None = None
    select: list[str] | None = None  # top-level properties; None = all
    nested_select: dict[str, list[str]] = field(default_factory=dict)  # nav -> line properties
    expand: set[str] = field(default_factory=set)
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    top: int | None = None
    skip: int = 0
    skiptoken: str | None = None
    inlinecount: bool = False


def _non_negative_int(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise bad_request(f"Invalid value '{text}' for the {name} query option.")
    return int(text)


def parse_query(
    entity_set: EntitySet,
    params: Mapping[str, str],
    child_sets: Mapping[str, EntitySet] | None = None,
) -> Query:
    """Validate the $-options of one request against the entity set's schema."""
    for name in params:
        if name.startswith("$") and name not in KNOWN_OPTIONS:
            raise bad_request(
                f"The query parameter '{name}' begins with a system-reserved '$' character but is not recognized."
            )
    query = Query()
    fields = entity_set.fields

    if params.get("$filter", "").strip():
        query.filter = parse_filter(params["$filter"], fields, entity_set.full_type)

    expand = params.get("$expand", "").strip()
    if expand:
        for name in (part.strip() for part in expand.split(",")):
            if name not in entity_set.navigation:
                raise bad_request(f"No property '{name}' exists in type '{entity_set.full_type}'.")
            query.expand.add(name)

    select = params.get("$select", "").strip()
    if select and select != "*":
        query.select = []
        for name in (part.strip() for part in select.split(",")):
            nav, _, sub = name.partition("/")
            if sub:
                child = (child_sets or {}).get(nav)
                if nav not in query.expand or child is None:
                    raise bad_request(f"Only properties specified in $expand can be traversed in $select ('{name}').")
                if sub not in child.fields:
                    raise bad_request(f"No property '{sub}' exists in type '{child.full_type}'.")
                query.nested_select.setdefault(nav, []).append(sub)
                if nav not in query.select:
                    query.select.append(nav)
                continue
            if name not in fields and name not in entity_set.navigation:
                raise bad_request(f"No property '{name}' exists in type '{entity_set.full_type}'.")
            query.select.append(name)

    orderby = params.get("$orderby", "").strip()
    if orderby:
        for part in orderby.split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
                raise bad_request(f"Invalid $orderby expression '{part.strip()}'.")
            if words[0] not in fields:
                raise bad_request(f"No property '{words[0]}' exists in type '{entity_set.full_type}'.")
            query.orderby.append((words[0], len(words) == 2 and words[1] == "desc"))

    if "$top" in params:
        query.top = _non_negative_int("$top", params["$top"])
    if "$skip" in params:
        query.skip = _non_negative_int("$skip", params["$skip"])
    if params.get("$skiptoken"):
        query.skiptoken = params["$skiptoken"]
    count = params.get("$inlinecount", "").strip()
    if count not in ("", "none", "allpages"):
        raise bad_request(f"Invalid value '{count}' for the $inlinecount query option.")
    query.inlinecount = count == "allpages"
    return query


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is not None, collation_key(value) if value is not None else 0)


def _parse_skiptoken(entity_set: EntitySet, token: str) -> Any:
    key_type = entity_set.fields[entity_set.key]
    text = token.strip()
    try:
        if key_type == GUID:
            if text.startswith("guid'") and text.endswith("'"):
                text = text[5:-1]
            return normalise_guid(text)
        if key_type == INT:
            return int(text)
    except ValueError:
        pass
    raise bad_request(f"Invalid $skiptoken '{token}'.")


@dataclass
class Page:
    rows: list[dict]
    total: int
    next_token: str | None
    remaining_top: int | None


def paginate(entity_set: EntitySet, rows: list[dict], query: Query) -> Page:
    """Filter, order and cut one page; returns the skiptoken for the next page if any."""
    selected = [row for row in rows if query.filter is None or matches(query.filter, row)]
    key = entity_set.key
    if query.orderby:
        ordered = sorted(selected, key=lambda row: _sort_key(row.get(key)))
        for prop, descending in reversed(query.orderby):
            ordered.sort(key=lambda row, p=prop: _sort_key(row.get(p)), reverse=descending)
    else:
        ordered = sorted(selected, key=lambda row: _sort_key(row.get(key)))
    total = len(ordered)

    start = query.skip
    if query.skiptoken is not None:
        last = _parse_skiptoken(entity_set, query.skiptoken)
        if query.orderby:
            positions = [i for i, row in enumerate(ordered) if row.get(key) == last]
            start = positions[0] + 1 if positions else 0
        else:
            marker = collation_key(last)
            start = next((i for i, row in enumerate(ordered) if collation_key(row.get(key)) > marker), len(ordered))
    size = PAGE_SIZE if query.top is None else min(PAGE_SIZE, query.top)
    page = ordered[start : start + size]
    remaining_top = None if query.top is None else query.top - len(page)
    more = start + len(page) < len(ordered) and (remaining_top is None or remaining_top > 0)
    next_token = entity_set.key_literal(page[-1][key]) if more and page else None
    return Page(page, total, next_token, remaining_top)


def next_url(base_url: str, path: str, params: Mapping[str, str], page: Page) -> str:
    """Absolute __next link: the same query, continued after the last row's key."""
    kept = {k: v for k, v in params.items() if k not in ("$skiptoken", "$skip", "$top")}
    if page.remaining_top is not None:
        kept["$top"] = str(page.remaining_top)
    kept["$skiptoken"] = page.next_token or ""
    # Keep $, quotes and parentheses readable, as in Exact's own links.
    query = urlencode(kept, quote_via=quote, safe="$'(),")
    return f"{base_url}{path}?{query}"


Children = Callable[[str, Any], tuple[EntitySet, list[dict]]]


def render(
    entity_set: EntitySet,
    record: dict,
    *,
    base_url: str,
    division: int | str,
    select: list[str] | None = None,
    nested_select: Mapping[str, list[str]] | None = None,
    expand: set[str] | None = None,
    children: Children | None = None,
) -> dict:
    """One record in Exact's JSON shape (``__metadata`` first, then properties)."""
    key = record[entity_set.key]
    uri = f"{base_url}/api/v1/{division}/{entity_set.path}({entity_set.key_literal(key)})"
    out: dict[str, Any] = {"__metadata": {"uri": uri, "type": entity_set.full_type}}
    names = select if select is not None else [*entity_set.fields, *entity_set.navigation]
    expand = expand or set()
    for name in names:
        if name in entity_set.navigation:
            if name in expand and children is not None:
                child_set, rows = children(name, key)
                sub = (nested_select or {}).get(name)
                out[name] = {
                    "results": [
                        render(child_set, row, base_url=base_url, division=division, select=sub) for row in rows
                    ]
                }
            else:
                out[name] = {"__deferred": {"uri": f"{uri}/{name}"}}
        else:
            out[name] = to_wire(record.get(name))
    for name in expand:
        if name not in out and children is not None:  # expanded but not selected: still shown
            child_set, rows = children(name, key)
            out[name] = {"results": [render(child_set, row, base_url=base_url, division=division) for row in rows]}
    return out
