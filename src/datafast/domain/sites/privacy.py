"""Privacy requests: everything a site holds about one person, exported as JSON or erased.

**Who.** A request names the person by a visitor id (the ``datafast_visitor_id`` cookie), by the
user id the site passed to ``identify``, or by an email address — hashed exactly as ``identify``
stores it (:func:`datafast.domain.revenue.service.email_hash`). The match then grows to the
whole person: every visitor id whose ``identify`` carried one of their user ids or email
hashes, and every email hash of their ``identify`` calls and of the payments linked to them
(several devices, a cookie cleared, a cookieless day each give another visitor id).

**What.** The ClickHouse tables are found from ``system.columns``, so a table added later is
covered too: a site's table holds the person when it has a ``visitor_id`` or ``email_hash``
column (or a ``props`` map, whose ``email_hash`` key ``identify`` fills). Today: ``events``,
``sessions`` and ``payments``. The config database holds nothing keyed by a visitor.

**Export** returns every such row as stored (``sessions``' cancel rows and every version of a
payment included). **Erase**:

1. deletes the person's rows from every such table (``ALTER TABLE … DELETE``, which rewrites
   the parts, so the ids are gone from disk, not only hidden; ``mutations_sync`` waits for it),
   except the tables in :data:`KEPT` — ``payments`` are the founder's books: kept, with their
   visitor link and customer email hash cleared (``link = 'erased'``, so a redelivered webhook
   does not link them again);
2. rebuilds the rollups the dashboards read: a materialized view adds each inserted block of
   ``events``/``sessions`` to ``*_hourly`` (and from there to ``*_daily``), but a delete never
   reaches them, and their visitor states (HyperLogLog of visitor hashes) cannot have one
   visitor taken out. So for each UTC day the person had rows on, the rollup rows of the site
   are deleted and recomputed from the raw tables with the views' own ``SELECT`` (read from
   ``system.tables``), which the views then carry on to the daily tables. This runs twice:
   before step 1, leaving the person's rows out (so an erase that fails half-way leaves the
   person findable and correct rollups, and is simply asked again), and after it;
   The site's visitor states by local day (``*_local_daily``) are then dropped and marked not
   ready; the ``local_days`` job fills them again from the rebuilt hourly rows;
3. forgets the visits still open in ingest's session state (so a next event starts a new visit
   rather than cancelling a deleted one), and drops the site's cached Stats API results.

An event of the same site and day written during a rebuild (between its delete and its insert:
under a second for a small site, longer for a busy day) is counted twice in the rollups' sums —
no lock spans ClickHouse and every ingest process to prevent it — so after the rebuild every
summed column is checked against what the views compute from the raw rows, and the rebuild is
done again (up to :data:`_REBUILD_ATTEMPTS` times) while they differ. (Visitor states are
unharmed: a visitor hash added twice counts once.) Events of the person still in the ingest log
(a few seconds' worth) land after the erase.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PrivacyRequest, Website
from datafast.db.retention import RETAINED
from datafast.domain.analytics.local_days import LocalDays
from datafast.domain.revenue.service import email_hash
from datafast.errors import InvalidInput
from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = (
    "KEPT",
    "Erased",
    "Export",
    "Match",
    "PrivacyTables",
    "Subject",
    "erase",
    "erase_request",
    "export",
    "export_request",
    "find",
    "list_requests",
    "privacy_tables",
)

log = get_logger(__name__)

By = Literal["visitor_id", "user_id", "email"]
KEPT: dict[str, dict[str, str]] = {
    "payments": {"visitor_id": "''", "session_id": "''", "email_hash": "''", "link": "'erased'"},
}
"""Tables whose rows are kept, and what their columns naming the person become."""
MAX_VISITORS = 10_000
"""A match larger than this is refused: a person is not ten thousand visitors (a shared id is)."""
_MAX_ROUNDS = 5
_REBUILD_ATTEMPTS = 3
_SYNC = {"mutations_sync": 2}
"""ALTER … DELETE/UPDATE answers once every replica has rewritten its parts."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a request is about, as the founder names them."""

    by: By
    value: str

    @classmethod
    def of(cls, visitor_id: str | None, user_id: str | None, email: str | None) -> Subject:
        given = [
            (by, v) for by, v in (("visitor_id", visitor_id), ("user_id", user_id), ("email", email)) if v
        ]
        if len(given) != 1:
            raise InvalidInput("Give exactly one of visitor_id, user_id or email")
        by, value = given[0]
        value = value.strip()
        if not value or len(value) > 320:
            raise InvalidInput(f"{by} must be 1 to 320 characters")
        if by == "email" and "@" not in value:
            raise InvalidInput("email must be an email address")
        return cls(by, value)  # type: ignore[arg-type]  # by is one of the three literals above


@dataclass(slots=True)
class Match:
    """The person as the site's data knows them."""

    visitor_ids: list[str] = field(default_factory=list)
    email_hashes: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.visitor_ids and not self.email_hashes


@dataclass(frozen=True, slots=True)
class PrivacyTables:
    """The site tables that can hold a person, with the columns that name them."""

    columns: dict[str, set[str]]
    """Storage table name → its columns among ``visitor_id``, ``email_hash``, ``props``."""

    def condition(self, table: str) -> str:
        """The person's rows of ``table`` (binds ``site``, ``visitors`` and ``hashes``)."""
        names = self.columns[table]
        parts = []
        if "visitor_id" in names:
            parts.append("visitor_id IN {visitors:Array(String)}")
        if "email_hash" in names:
            parts.append("email_hash IN {hashes:Array(String)}")
        if "props" in names:
            parts.append("props['email_hash'] IN {hashes:Array(String)}")
        return "website_id = {site:UUID} AND (" + " OR ".join(parts) + ")"


class Export(msgspec.Struct):
    """A person's data on a site, as stored: each table's rows, every column."""

    website_id: uuid.UUID
    domain: str
    generated_at: datetime
    matched_by: By
    visitor_ids: list[str]
    email_hashes: list[str]
    user_ids: list[str]
    tables: dict[str, list[dict[str, Any]]]
    """Table name → its rows about the person (events, sessions, payments, …)."""
    notes: list[str]

    @property
    def rows(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


class Erased(msgspec.Struct):
    """What an erase did."""

    visitors: int
    deleted: dict[str, int]
    """Table name → rows deleted."""
    unlinked: dict[str, int]
    """Table name → rows kept with the person's ids cleared (payments)."""
    rebuilt_days: list[date]
    """UTC days whose rollup rows were recomputed."""

    @property
    def rows(self) -> int:
        return sum(self.deleted.values()) + sum(self.unlinked.values())


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _read_name(store: EventStore, storage: str) -> str:
    """The table queries read: on a cluster the Distributed table over ``<name>_local``."""
    return storage.removesuffix("_local") if store.cluster else storage


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def privacy_tables(store: EventStore) -> PrivacyTables:
    """Every MergeTree table of a site (``website_id``) that has a column naming a person."""
    result = await store.query(
        "SELECT c.table, groupArray(c.name) FROM system.columns AS c"
        " INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table"
        " WHERE c.database = {db:String} AND t.engine LIKE '%MergeTree'"
        " AND c.name IN ('website_id', 'visitor_id', 'email_hash', 'props')"
        " GROUP BY c.table ORDER BY c.table",
        parameters={"db": store.database},
    )
    columns: dict[str, set[str]] = {}
    for table, names in result.result_rows:
        found = set(names)
        if "website_id" in found and found & {"visitor_id", "email_hash", "props"}:
            columns[str(table)] = found - {"website_id"}
    return PrivacyTables(columns)


async def _strings(store: EventStore, sql: str, parameters: dict[str, Any]) -> set[str]:
    result = await store.query(sql, parameters=parameters)
    return {str(row[0]) for row in result.result_rows if row[0]}


async def find(store: EventStore, website_id: uuid.UUID, subject: Subject) -> Match:
    """The visitor ids, email hashes and user ids of the person ``subject`` names on the site."""
    site = str(website_id)
    visitors: set[str] = set()
    hashes: set[str] = set()
    users: set[str] = set()
    if subject.by == "visitor_id":
        visitors.add(subject.value)
    elif subject.by == "user_id":
        users.add(subject.value)
    else:
        hashes.add(email_hash(subject.value))
    identified_users: set[str] = set()
    seen: tuple[int, int, int] = (-1, -1, -1)
    for _ in range(_MAX_ROUNDS):
        if seen == (len(visitors), len(hashes), len(users)):
            break
        seen = (len(visitors), len(hashes), len(users))
        parameters = {
            "site": site,
            "visitors": sorted(visitors),
            "hashes": sorted(hashes),
            "users": sorted(users),
        }
        identified = await store.query(
            "SELECT DISTINCT visitor_id, props['email_hash'], props['user_id'] FROM events"
            " WHERE website_id = {site:UUID} AND event_type = 'identify'"
            " AND (visitor_id IN {visitors:Array(String)}"
            " OR props['email_hash'] IN {hashes:Array(String)} OR props['user_id'] IN {users:Array(String)})",
            parameters=parameters,
        )
        for visitor, hashed, user in identified.result_rows:
            visitors.update(v for v in (str(visitor),) if v)
            hashes.update(h for h in (str(hashed),) if h)
            identified_users.update(u for u in (str(user),) if u)
        users |= identified_users
        paid = await store.query(
            "SELECT DISTINCT visitor_id, email_hash FROM payments WHERE website_id = {site:UUID}"
            " AND (visitor_id IN {visitors:Array(String)} OR email_hash IN {hashes:Array(String)})",
            parameters=parameters,
        )
        for visitor, hashed in paid.result_rows:
            visitors.update(v for v in (str(visitor),) if v)
            hashes.update(h for h in (str(hashed),) if h)
        if len(visitors) > MAX_VISITORS:
            raise InvalidInput(f"This matches more than {MAX_VISITORS} visitors: it does not name one person")
    # An id or hash the site never stored is left out: the match says what is held.
    tables = await privacy_tables(store)
    held = await _held(store, tables, Match(sorted(visitors), sorted(hashes)), site)
    return Match(sorted(visitors & held), sorted(hashes & held), sorted(identified_users))


async def _held(store: EventStore, tables: PrivacyTables, match: Match, site: str) -> set[str]:
    """The visitor ids and email hashes of ``match`` that some table holds."""
    parameters = {"site": site, "visitors": match.visitor_ids, "hashes": match.email_hashes}
    held: set[str] = set()
    for storage, columns in tables.columns.items():
        name = _quote(_read_name(store, storage))
        condition = tables.condition(storage)
        for column, expression in (
            ("visitor_id", "visitor_id"),
            ("email_hash", "email_hash"),
            ("props", "props['email_hash']"),
        ):
            if column in columns:
                # A quoted name from system.columns and constant fragments; every value is bound.
                sql = f"SELECT DISTINCT {expression} FROM {name} WHERE {condition}"  # noqa: S608
                held |= await _strings(store, sql, parameters)
    return held


def _parameters(website_id: uuid.UUID, match: Match) -> dict[str, Any]:
    return {"site": str(website_id), "visitors": match.visitor_ids, "hashes": match.email_hashes}


async def export(
    store: EventStore, website_id: uuid.UUID, domain: str, subject: Subject, match: Match
) -> Export:
    """Every row of every table that holds the person, as stored."""
    tables = await privacy_tables(store)
    rows: dict[str, list[dict[str, Any]]] = {}
    if not match.empty:
        for storage in tables.columns:
            name = _read_name(store, storage)
            result = await store.query(
                # The table name comes from system.columns and is quoted; every value is bound.
                f"SELECT * FROM {_quote(name)} WHERE {tables.condition(storage)}",  # noqa: S608
                parameters=_parameters(website_id, match),
            )
            rows[name] = [
                {column: _plain(value) for column, value in zip(result.column_names, row, strict=True)}
                for row in result.result_rows
            ]
    return Export(
        website_id=website_id,
        domain=domain,
        generated_at=datetime.now(UTC),
        matched_by=subject.by,
        visitor_ids=match.visitor_ids,
        email_hashes=match.email_hashes,
        user_ids=match.user_ids,
        tables=rows,
        notes=[
            "Rows are as stored. sessions: a visit is written again (sign -1 cancels the previous "
            "state, sign 1 the new one) each time it changes; the sum of sign is the number of visits.",
            "Emails are stored only as the SHA-256 of the trimmed, lowercased address (email_hashes).",
            "The aggregate tables (sessions_hourly, events_hourly, sessions_daily, events_daily) hold "
            "counts per hour and day, not rows about a person. The config database holds no visitor data.",
        ],
    )


_TO = re.compile(r"\bTO\s+(?:`?[\w.]+`?\.)?`?(\w+)`?", re.S)


async def _views(store: EventStore) -> dict[str, list[tuple[str, str, str]]]:
    """Table → the materialized views reading it: (view, target table, SELECT)."""
    result = await store.query(
        "SELECT name, dependencies_table FROM system.tables WHERE database = {db:String}",
        parameters={"db": store.database},
    )
    readers = {str(name): [str(v) for v in views] for name, views in result.result_rows if views}
    defined = await store.query(
        "SELECT name, as_select, create_table_query FROM system.tables"
        " WHERE database = {db:String} AND engine = 'MaterializedView'",
        parameters={"db": store.database},
    )
    views = {}
    for name, query, create in defined.result_rows:
        target = _TO.search(str(create))
        if target is None:
            raise RuntimeError(f"materialized view {name} writes to no TO table; cannot rebuild it")
        views[str(name)] = (target.group(1), str(query))
    return {
        table: [(view, *views[view]) for view in names if view in views] for table, names in readers.items()
    }


def _time_expression(table: str) -> str:
    expression = RETAINED.get(table.removesuffix("_local"))
    if expression is None:
        raise RuntimeError(f"{table} feeds a rollup but has no time column in datafast.db.retention.RETAINED")
    return expression


def _downstream(views: dict[str, list[tuple[str, str, str]]], table: str) -> list[str]:
    """Every table filled, directly or through other views, from ``table``'s inserts."""
    found: list[str] = []
    for _, target, _ in views.get(table, []):
        if target not in found:
            found += [target, *(t for t in _downstream(views, target) if t not in found)]
    return found


async def _affected_days(
    store: EventStore, storage: str, condition: str, parameters: dict[str, Any]
) -> set[date]:
    result = await store.query(
        f"SELECT DISTINCT toDate({_time_expression(storage)}) FROM {_quote(_read_name(store, storage))}"  # noqa: S608
        f" WHERE {condition}",
        parameters=parameters,
    )
    return {row[0] for row in result.result_rows}


class _Rollups:
    """The rollups fed from a site's raw tables: recomputing and checking their rows of some days."""

    def __init__(
        self, store: EventStore, website_id: uuid.UUID, views: dict[str, list[tuple[str, str, str]]]
    ):
        self.store = store
        self.site = str(website_id)
        self.views = views
        self.database = _quote(store.database)

    def _select(self, raw: str, view: str, query: str, leave_out: str) -> str:
        """The view's own SELECT, reading only the site's ``days`` (minus ``leave_out``): what the
        view would have added to its rollup had the left-out rows never been inserted."""
        filtered = (
            f"(SELECT * FROM {self.database}.{_quote(_read_name(self.store, raw))}"  # noqa: S608
            f" WHERE website_id = {{site:UUID}} AND toDate({_time_expression(raw)}) IN {{days:Array(Date)}}"
            f"{leave_out})"
        )
        database = re.escape(self.store.database)
        pattern = re.compile(rf"\bFROM\s+`?{database}`?\.`?{re.escape(raw)}`?(?=[\s)]|$)")
        rewritten, count = pattern.subn("FROM " + filtered, query)
        if count != 1:
            raise RuntimeError(f"cannot find {self.store.database}.{raw} in the SELECT of {view}")
        return rewritten

    async def rebuild(
        self, raw: str, days: set[date], without: tuple[PrivacyTables, Match] | None = None
    ) -> None:
        """Recompute the rollup rows of ``days`` fed from ``raw`` (see the module doc), leaving out
        the rows of a person (``without``) when they are still there."""
        on_cluster = f" ON CLUSTER {_quote(self.store.cluster)}" if self.store.cluster else ""
        parameters: dict[str, Any] = {"site": self.site, "days": sorted(days)}
        leave_out = ""
        if without is not None:
            tables, match = without
            leave_out = f" AND NOT ({tables.condition(raw)})"
            parameters |= _parameters(uuid.UUID(self.site), match)
        for target in _downstream(self.views, raw):
            await self.store.command(
                f"ALTER TABLE {self.database}.{_quote(target)}{on_cluster}"
                f" DELETE WHERE website_id = {{site:UUID}}"
                f" AND toDate({_time_expression(target)}) IN {{days:Array(Date)}}",
                parameters=parameters,
                settings=_SYNC,
            )
        for view, target, query in self.views.get(raw, []):
            await self.store.command(
                f"INSERT INTO {self.database}.{_quote(_read_name(self.store, target))} "
                + self._select(raw, view, query, leave_out),
                parameters=parameters,
                # A replicated table would skip a block identical to one inserted before (its
                # checksum is remembered), and these rows replace deleted ones: always insert.
                settings={
                    "insert_deduplicate": 0,
                    **({"insert_distributed_sync": 1} if self.store.cluster else {}),
                },
            )

    async def agree(self, raw: str, days: set[date]) -> bool:
        """Whether every summed column of the rollups fed from ``raw`` equals, over ``days``, what
        their views compute from the raw rows. An event written while a rebuild ran is counted
        twice in the sums (the visitor states are unharmed: a hash added twice counts once)."""
        parameters: dict[str, Any] = {"site": self.site, "days": sorted(days)}
        summed = await self.store.query(
            "SELECT table, groupArray(name) FROM system.columns WHERE database = {db:String}"
            " AND type LIKE 'SimpleAggregateFunction(sum,%' GROUP BY table",
            parameters={"db": self.store.database},
        )
        sums = {str(table): [str(c) for c in columns] for table, columns in summed.result_rows}
        for view, target, query in self.views.get(raw, []):
            columns = sums.get(target, [])
            if not columns:
                continue
            truth = await self.store.query(
                f"SELECT {', '.join(f'sum({_quote(c)})' for c in columns)} FROM ("  # noqa: S608
                + self._select(raw, view, query, "")
                + ")",
                parameters=parameters,
            )
            expected = dict(zip(columns, truth.result_rows[0], strict=True))
            for table in [target, *_downstream(self.views, target)]:
                shared = [c for c in columns if c in sums.get(table, [])]
                if not shared:  # visitor states only (the local days): nothing summed to check
                    continue
                have = await self.store.query(
                    f"SELECT {', '.join(f'sum({_quote(c)})' for c in shared)}"  # noqa: S608
                    f" FROM {self.database}.{_quote(_read_name(self.store, table))}"
                    f" WHERE website_id = {{site:UUID}}"
                    f" AND toDate({_time_expression(table)}) IN {{days:Array(Date)}}",
                    parameters=parameters,
                )
                if [int(v or 0) for v in have.result_rows[0]] != [int(expected[c] or 0) for c in shared]:
                    log.warning("rollup differs from its raw rows", table=table, website_id=self.site)
                    return False
        return True


ForgetVisits = Callable[[str, Sequence[str]], Awaitable[None]]
"""Drop ingest's open-visit state of these visitor ids of a site (``<site>:<visitor>`` keys)."""


async def erase(
    store: EventStore,
    website_id: uuid.UUID,
    match: Match,
    forget_visits: ForgetVisits | None = None,
) -> Erased:
    """Delete the person's rows, unlink their payments and rebuild the rollups they counted in.

    The rollups are rebuilt without the person *before* their rows go, so an erase that fails
    half-way (ClickHouse gone) leaves them findable and the request can simply be made again;
    and once more after, so the rollups equal what the raw tables then hold.
    """
    if match.empty:
        return Erased(visitors=0, deleted={}, unlinked={}, rebuilt_days=[])
    tables = await privacy_tables(store)
    views = await _views(store)
    parameters = _parameters(website_id, match)
    on_cluster = f" ON CLUSTER {_quote(store.cluster)}" if store.cluster else ""
    database = _quote(store.database)
    held: dict[str, int] = {}
    days: dict[str, set[date]] = {}
    for storage in tables.columns:
        condition = tables.condition(storage)
        counted = await store.query(
            f"SELECT count() FROM {_quote(_read_name(store, storage))} WHERE {condition}",  # noqa: S608 - quoted name, bound values
            parameters=parameters,
        )
        if found := int(counted.result_rows[0][0]):
            held[storage] = found
            if storage in views:
                days[storage] = await _affected_days(store, storage, condition, parameters)
    rollups = _Rollups(store, website_id, views)
    for raw, on in days.items():
        await rollups.rebuild(raw, on, without=(tables, match))
    deleted: dict[str, int] = {}
    unlinked: dict[str, int] = {}
    for storage, found in held.items():
        condition = tables.condition(storage)
        name = _read_name(store, storage)
        if (kept := KEPT.get(name)) is not None:
            assignments = ", ".join(f"{_quote(column)} = {value}" for column, value in kept.items())
            statement, unlinked[name] = f"UPDATE {assignments} WHERE {condition}", found
        else:
            statement, deleted[name] = f"DELETE WHERE {condition}", found
        await store.command(
            f"ALTER TABLE {database}.{_quote(storage)}{on_cluster} {statement}",
            parameters=parameters,
            settings=_SYNC,
        )
    for raw, on in days.items():
        await rollups.rebuild(raw, on)
        # Traffic written while it ran may be counted twice: check, and do it again if so.
        for _ in range(_REBUILD_ATTEMPTS):
            if await rollups.agree(raw, on):
                break
            await rollups.rebuild(raw, on)
        else:
            log.error("rollups still differ from the raw rows after an erase", website_id=str(website_id))
    if days:  # the local-day states still hold the person: filled again from the rebuilt hours
        await LocalDays(store).reset(str(website_id))
    if forget_visits is not None:
        await forget_visits(str(website_id), match.visitor_ids)
    return Erased(
        visitors=len(match.visitor_ids),
        deleted=deleted,
        unlinked=unlinked,
        rebuilt_days=sorted(set().union(*days.values())) if days else [],
    )


SitesChanged = Callable[[Iterable[str]], Awaitable[None]]
"""Told the site whose data changed (the Stats API drops its cached results)."""


async def _audit(
    db: AsyncSession,
    website: Website,
    kind: str,
    subject: Subject,
    requested_by: str,
    visitors: int,
    rows: int,
) -> None:
    db.add(
        PrivacyRequest(
            website_id=website.id,
            kind=kind,
            matched_by=subject.by,
            requested_by=requested_by[:320],
            visitors=visitors,
            rows=rows,
        )
    )
    await db.flush()
    # Never the subject's identifiers in the log either: the erase must leave none behind.
    log.info(
        "privacy request",
        kind=kind,
        website_id=str(website.id),
        matched_by=subject.by,
        requested_by=requested_by,
        visitors=visitors,
        rows=rows,
    )


async def export_request(
    db: AsyncSession, store: EventStore, website: Website, subject: Subject, requested_by: str
) -> Export:
    """Find the person, export their rows, and record the request."""
    match = await find(store, website.id, subject)
    exported = await export(store, website.id, website.domain, subject, match)
    await _audit(db, website, "export", subject, requested_by, len(match.visitor_ids), exported.rows)
    return exported


async def erase_request(
    db: AsyncSession,
    store: EventStore,
    website: Website,
    subject: Subject,
    requested_by: str,
    *,
    forget_visits: ForgetVisits | None = None,
    changed: SitesChanged | None = None,
) -> Erased:
    """Find the person, erase them, drop the site's cached results, and record the request."""
    match = await find(store, website.id, subject)
    erased = await erase(store, website.id, match, forget_visits)
    if changed is not None and erased.rows:
        await changed([str(website.id)])
    await _audit(db, website, "erase", subject, requested_by, erased.visitors, erased.rows)
    return erased


async def list_requests(db: AsyncSession, website_id: uuid.UUID, limit: int = 100) -> list[PrivacyRequest]:
    """The site's privacy requests, newest first."""
    rows = await db.scalars(
        select(PrivacyRequest)
        .where(PrivacyRequest.website_id == website_id)
        .order_by(PrivacyRequest.created_at.desc())
        .limit(limit)
    )
    return list(rows.all())
