"""Hostile input: every request field of every RPC gets arbitrary strings, numbers, decimals,
timestamps and enum values. The answer is OK or a client error with one ErrorInfo of domain
rewards.v1, never INTERNAL/UNKNOWN, and a refused call changes nothing. Raw malformed bytes
and oversized messages are answered with an error while the server keeps serving."""

import base64
import functools
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rewards.v1 import (
    catalog_pb2,
    common_pb2,
    events_pb2,
    groups_pb2,
    issuance_pb2,
    participants_pb2,
    programs_pb2,
)

from rewards_service.config import Config
from rewards_service.domain.pagination import filters_digest
from rewards_service.server import MAX_MESSAGE_BYTES, build_server
from rewards_service.store.db import session
from rewards_service.store.models import (
    Asset,
    Balance,
    Code,
    CodePool,
    CustomFieldDef,
    Event,
    EventConsumer,
    FulfillmentStatusDef,
    GroupBalance,
    GroupLedgerEntry,
    GroupMember,
    Issuance,
    LedgerEntry,
    Participant,
    ParticipantGroup,
    Program,
    Reward,
)
from tests import factories as f
from tests.conftest import new_program
from tests.helpers import Api, make_api, unpack_details

ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
}
# A named consumer more than a program may keep is RESOURCE_EXHAUSTED TOO_MANY_CONSUMERS.
EXTRA_ALLOWED = {"AckEvents": {grpc.StatusCode.RESOURCE_EXHAUSTED}}
EXAMPLES = int(os.environ.get("REWARDS_HOSTILE_EXAMPLES", "100"))
TIMEOUT = 30
# Leaks a caller must never see in an error message.
LEAKS = ("Traceback", "SELECT ", "INSERT ", "UPDATE ", "psycopg2", "sqlite3", "peewee", 'File "')

# Inputs tried, per RPC, summed over the session (reported by the last test of the module).
TRIED: dict[str, int] = {}
_tried_lock = threading.Lock()


# Values


SPECIAL_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\n",
    "x\n",
    "\t",
    "\r\n",
    "\u200b",
    "\ufeff",
    "é",
    "e\u0301",
    "ß",
    "İ",
    "\U0001f600",
    "\u202e",
    "null",
    "None",
    "undefined",
    "0",
    "-1",
    "'",
    '"',
    "\\",
    "%",
    "_",
    "%_%",
    "*",
    "'; DROP TABLE reward; --",
    '" OR 1=1 --',
    "${jndi:ldap://x}",
    "{{7*7}}",
    "<script>",
    "../../etc/passwd",
    "rew_",
    "iss_",
    "par_",
    "ast_",
    "pool_",
    "rew_" + "0" * 26,
]
# Arabic-Indic and fullwidth digits among them.
DECIMALS = [
    "1e309",
    "-1e309",
    "1E3",
    "1e-3",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "-0",
    "-0.00",
    "0",
    "0.0",
    "00001",
    "1.",
    ".5",
    " 1",
    "1 ",
    "1\n",
    "+1",
    "1_000",
    "0x10",
    "1,5",
    "1.5.5",
    "--1",
    "\u0661\u0662",
    "\uff11",
    "9" * 40,
    "1" + "0" * 39,
    "0." + "0" * 38 + "1",
    "-" + "9" * 20,
    "9" * 20,
    "9" * 20 + "." + "9" * 18,
    "99999999999999999999.99",
    "9223372036854775807",
    "9223372036854775808",
    "0.00000001",
    "0.000000001",
    "100.00",
    "100.01",
    "1.00",
    "0.99",
    "1.005",
    "1.25",
    "-1.25",
]
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)
TS_MIN, TS_MAX = -62_135_596_800, 253_402_300_799
TIME_TYPES = ("google.protobuf.Timestamp", "google.protobuf.Duration")


def _edges(low: int, high: int) -> list[int]:
    return [low, low + 1, -1, 0, 1, 2, 100, 500, 501, 1000, 1001, 10**6, 10**6 + 1, high - 1, high]


def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([v for v in _edges(low, high) if low <= v <= high]),
        st.integers(-1000, 1000),
        st.integers(low, high),
    )


def huge_strings() -> st.SearchStrategy[str]:
    return st.builds(
        lambda char, n: char * n,
        st.sampled_from(["x", "é", "\U0001f600", "\x00", " ", "9"]),
        st.sampled_from([65, 101, 129, 256, 321, 1001, 1025, 10_000, 300_000]),
    )


def strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_STRINGS),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="ascii"), max_size=40),
        huge_strings(),
    )


def decimals() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(DECIMALS),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.integers(-(10**45), 10**45).map(str),
        st.from_regex(r"-?[0-9]{1,24}(\.[0-9]{0,20})?", fullmatch=True),
        strings(),
    )


def variants(values: list[str]) -> st.SearchStrategy[str]:
    """Real values of the world, and near misses of them."""
    real = st.sampled_from(values)
    return st.one_of(
        real,
        real.map(str.upper),
        real.map(lambda v: v + "\n"),
        real.map(lambda v: " " + v),
        real.map(lambda v: v[:-1]),
        real.map(lambda v: v + "\x00"),
        strings(),
    )


def maps() -> st.SearchStrategy[dict[str, str]]:
    small = st.one_of(st.sampled_from(SPECIAL_STRINGS), st.text(max_size=10))
    return st.one_of(
        st.dictionaries(small, small, max_size=4),
        st.dictionaries(st.sampled_from(["k", "x" * 65, ""]), huge_strings(), max_size=2),
        st.integers(50, 52).map(lambda n: {f"k{i}": "v" for i in range(n)}),
    )


# Messages: every leaf field of a request, reached by path


MAX_DEPTH = 4
DECIMAL_FIELDS = {"amount", "unit_cost", "delta", "discount_value"}


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.type == fd.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry


def _repeated(fd: FieldDescriptor) -> bool:
    return fd.is_repeated


def leaf_paths(descriptor, depth: int = 0) -> list[tuple[str, ...]]:
    """Every settable field path of a message type (message fields are walked into)."""
    paths: list[tuple[str, ...]] = []
    for fd in descriptor.fields:
        if fd.type == fd.TYPE_MESSAGE and not _is_map(fd):
            if _repeated(fd):
                paths.append((fd.name,))  # the list itself: emptied or grown
            if depth < MAX_DEPTH:
                paths += [(fd.name, *rest) for rest in leaf_paths(fd.message_type, depth + 1)]
        else:
            paths.append((fd.name,))
    return paths


@dataclass
class World:
    """One program's resources, for requests to point at."""

    api: Api
    program_id: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    bases: dict[str, list] = field(default_factory=dict)
    method: str = ""  # the RPC under test

    def all_ids(self) -> list[str]:
        return [i for values in self.ids.values() for i in values]


ID_KINDS = {
    "reward_id": "reward",
    "asset_id": "asset",
    "cost_asset_id": "asset",
    "code_pool_id": "pool",
    "participant_id": "participant",
    "group_id": "group",
}


def _id_kind(fd: FieldDescriptor, method: str) -> str:
    """Which of the world's ids an id field names."""
    if fd.name in ID_KINDS:
        return ID_KINDS[fd.name]
    if fd.containing_type.name in ("ParticipantRef", "Participant"):
        return "participant"
    for word, kind in (
        ("FulfillmentStatus", "fulfillment_status"),
        ("CustomField", "custom_field"),
        ("Group", "group"),
        ("Issuance", "issuance"),
        ("Fulfillment", "issuance"),
        ("Reward", "reward"),
        ("Asset", "asset"),
        ("CodePool", "pool"),
        ("Participant", "participant"),
    ):
        if word in method:
            return kind
    return ""


def value_for(world: World, fd: FieldDescriptor) -> st.SearchStrategy:
    name = fd.name
    if _is_map(fd):
        return maps()
    if _repeated(fd) and fd.type == fd.TYPE_STRING:
        codes = st.lists(strings(), max_size=8)
        if name == "paths":
            known = [
                "*",
                "name",
                "status",
                "max_total",
                "points.amount",
                "points",
                "product.quantity",
                "limits",
                "segments",
                "email",
                "mobile",
                "id",
                "etag",
                "type",
                "cost_asset_id",
                "redemption_type",
                "unit_cost",
                "available_until",
                "metadata",
            ]
            return st.lists(st.one_of(st.sampled_from(known), strings()), max_size=4)
        return st.one_of(
            codes,
            st.just([f"C-{i}" for i in range(10_001)]),
            st.lists(st.sampled_from(["DUP", "A", "B"]), max_size=6),
        )
    if fd.type == fd.TYPE_STRING:
        if name in DECIMAL_FIELDS:
            return decimals()
        if name == "page_token":
            return st.one_of(st.sampled_from(world.tokens), strings())
        if name == "id" or name.endswith("_id"):
            near = variants(world.all_ids() + world.refs.get(name, []))
            own = world.ids.get(_id_kind(fd, world.method), [])
            return st.one_of(st.sampled_from(own), near) if own else near
        if name in world.refs:
            return variants(world.refs[name])
        return strings()
    if fd.type == fd.TYPE_ENUM and _repeated(fd):
        one = st.one_of(st.sampled_from([v.number for v in fd.enum_type.values]), ints(*INT32))
        return st.lists(one, max_size=8)
    if fd.type == fd.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in fd.enum_type.values]), ints(*INT32))
    if fd.type == fd.TYPE_BOOL:
        return st.booleans()
    if fd.type in (fd.TYPE_INT64, fd.TYPE_SINT64, fd.TYPE_SFIXED64):
        if fd.containing_type.full_name in TIME_TYPES:
            return st.one_of(
                st.sampled_from([TS_MIN - 1, TS_MIN, TS_MAX, TS_MAX + 1, 315_576_000_000, 10**15]),
                ints(*INT64),
            )
        return ints(*INT64)
    if fd.type in (fd.TYPE_INT32, fd.TYPE_SINT32, fd.TYPE_SFIXED32):
        if name == "nanos":
            return st.one_of(st.sampled_from([-1, 999_999_999, 10**9]), ints(*INT32))
        return ints(*INT32)
    raise AssertionError(f"no strategy for {fd.full_name}")


def mutate(data, world: World, message, path: tuple[str, ...]) -> None:
    """Set the field at `path` of `message` to a drawn value, creating what lies on the way."""
    holder = message
    for i, name in enumerate(path):
        fd = holder.DESCRIPTOR.fields_by_name[name]
        last = i == len(path) - 1
        if last and _is_map(fd):
            getattr(holder, name).clear()
            getattr(holder, name).update(data.draw(value_for(world, fd), label=".".join(path)))
        elif last and fd.type == fd.TYPE_MESSAGE and _repeated(fd):
            items = getattr(holder, name)
            size = data.draw(st.sampled_from([0, 1, 2, 21, 101, 501]), label=f"len {name}")
            if not len(items):
                items.add()
            template = type(items[0])()
            template.CopyFrom(items[0])
            del items[:]
            for _ in range(size):
                items.add().CopyFrom(template)
        elif last and _repeated(fd):
            items = getattr(holder, name)
            del items[:]
            items.extend(data.draw(value_for(world, fd), label=".".join(path)))
        elif last:
            setattr(holder, name, data.draw(value_for(world, fd), label=".".join(path)))
        elif _repeated(fd):
            items = getattr(holder, name)
            if not len(items):
                items.add()
            holder = items[data.draw(st.integers(0, len(items) - 1), label=f"{name}[]")]
        else:
            holder = getattr(holder, name)


# The world


def _ts(delta: timedelta) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.now(UTC) + delta)
    return ts


def _group(api: Api, name: str, members: list[str]) -> groups_pb2.Group:
    group = api.groups.CreateGroup(
        groups_pb2.CreateGroupRequest(group=groups_pb2.Group(name=name), request_id=f"grp-{name}")
    )
    for member in members:
        api.groups.AddGroupMember(
            groups_pb2.AddGroupMemberRequest(group_id=group.id, participant=f.ref(member))
        )
    return group


def _registry(api: Api) -> tuple[list[str], list[str]]:
    """Defines two custom fields and two fulfillment statuses: (fields' ids, statuses' ids)."""
    fields = [
        api.registry.CreateCustomField(
            programs_pb2.CreateCustomFieldRequest(
                custom_field=programs_pb2.CustomField(key=key, type=kind, required=required),
                request_id=f"cfd-{key}",
            )
        ).id
        for key, kind, required in (
            ("size", programs_pb2.CUSTOM_FIELD_TYPE_STRING, False),
            ("born", programs_pb2.CUSTOM_FIELD_TYPE_DATE, True),
        )
    ]
    statuses = [
        api.registry.CreateFulfillmentStatus(
            programs_pb2.CreateFulfillmentStatusRequest(
                fulfillment_status=programs_pb2.FulfillmentStatus(status=status),
                request_id=f"fst-{status}",
            )
        ).id
        for status in ("NEW", "SHIPPED")
    ]
    return fields, statuses


REGISTRY_METHODS = {
    m.name for m in programs_pb2.DESCRIPTOR.services_by_name["ProgramRegistry"].methods
}


def build_world(channel: grpc.Channel, method: str = "") -> World:
    issued = new_program("hostile")
    api = make_api(channel, issued.program_id, issued.api_key)
    world = World(api, issued.program_id)
    points, fine = f.asset(api, "POINTS", scale=2), f.asset(api, "FINE", scale=8)
    whole = f.asset(api, "WHOLE", scale=0)
    pool = f.code_pool(api, ["C1", "C2", "C3", "C4", "C5"])
    empty_pool = f.code_pool(api, [])
    window = [(common_pb2.LIMIT_SCOPE_PARTICIPANT, 3, 86_400)]
    rewards = {
        "product": f.reward(api),
        "points": f.reward(api, points=catalog_pb2.PointsConfig(asset_id=points.id, amount="10")),
        "fine_points": f.reward(
            api, points=catalog_pb2.PointsConfig(asset_id=fine.id, amount="0.00000001")
        ),
        "priced": f.reward(api, cost_asset_id=points.id, unit_cost="1.25", max_total=1000),
        "amount": f.reward(
            api,
            cost_asset_id=fine.id,
            unit_cost="2.5",
            redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        ),
        "coupon": f.reward(api, unique_coupon=catalog_pb2.UniqueCouponConfig(code_pool_id=pool.id)),
        "shared": f.reward(
            api,
            non_unique_coupon=catalog_pb2.NonUniqueCouponConfig(
                code="SAVE10",
                discount_type=common_pb2.DISCOUNT_TYPE_PERCENTAGE,
                discount_value="10",
            ),
        ),
        "limited": f.reward(api, limits=window, segments=[("tier", "gold")], max_per_participant=5),
        "draft": f.reward(api, status=common_pb2.REWARD_STATUS_DRAFT),
    }
    gold = f.participant(
        api, "gold-1", email="gold@example.com", mobile="+15550001", segments=[("tier", "gold")]
    )
    shared_a = f.participant(api, "shared-a", email="shared@example.com", mobile="+15550002")
    f.participant(api, "shared-b", email="shared@example.com", mobile="+15550002")
    f.fund(api, gold.id, points.id, "1000.00")
    f.fund(api, gold.id, fine.id, "1000")
    issuances = [
        f.issue(api, rewards["product"].id, gold.id, request_id="seed-1").issuance,
        f.issue(api, rewards["points"].id, gold.id, request_id="seed-2").issuance,
        f.issue(api, rewards["priced"].id, gold.id, request_id="seed-3").issuance,
    ]
    # gold shares a funded balance: issues paid from the group reach its ledger too.
    member = f.participant(api, "member-2")
    household = _group(api, "household", [gold.id, member.id])
    lonely = _group(api, "lonely", [])
    for delta, request_id in (("100.00", "gadj-1"), ("50.00", "")):
        api.groups.AdjustGroupBalance(
            groups_pb2.AdjustGroupBalanceRequest(
                group_id=household.id, asset_id=points.id, delta=delta, request_id=request_id
            )
        )
    # A program that defines its registries refuses custom fields and fulfillment statuses
    # it does not know: only the registry's own RPCs see one, the other RPCs keep free-form
    # values to reach further with.
    fields, statuses = _registry(api) if method in REGISTRY_METHODS else ([], [])
    stranger = new_program("hostile-other")
    other = make_api(channel, stranger.program_id, stranger.api_key)
    foreign = [
        f.reward(other).id,
        f.participant(other, "gold-1").id,
        f.asset(other).id,
        _group(other, "household", []).id,
    ]
    world.ids = {
        "reward": [r.id for r in rewards.values()],
        "asset": [points.id, fine.id, whole.id],
        "pool": [pool.id, empty_pool.id],
        "participant": [gold.id, shared_a.id],
        "issuance": [i.id for i in issuances],
        "group": [household.id, lonely.id],
        "custom_field": fields,
        "fulfillment_status": statuses,
        "foreign": foreign,
    }
    world.refs = {
        "external_id": ["gold-1", "shared-a", "shared-b"],
        "email": ["gold@example.com", "shared@example.com"],
        "mobile": ["+15550001", "+15550002", "+" + "1" * 32],
        "request_id": ["seed-1", "seed-2", "seed-3", "fresh", "gadj-1", "grp-household"],
        "client_reference": ["seed-1", "grant-1"],
        "code": ["POINTS", "GEMS", "C1", "SAVE10"],
        "segment": ["tier"],
        "partition": ["gold"],
        "status": ["SHIPPED", "NEW"],
        "consumer": ["seen", "fresh"],
        "key": ["size", "born"],
    }
    api.events.AckEvents(events_pb2.AckEventsRequest(consumer="seen", position=1))
    for listing, request in (
        (api.catalog.ListRewards, catalog_pb2.ListRewardsRequest(page_size=1)),
        (api.catalog.ListAssets, catalog_pb2.ListAssetsRequest(page_size=1)),
        (
            api.issuance.ListIssuances,
            issuance_pb2.ListIssuancesRequest(page_size=1),
        ),
        (api.events.ListEvents, events_pb2.ListEventsRequest(page_size=1)),
        (api.groups.ListGroups, groups_pb2.ListGroupsRequest(page_size=1)),
        (
            api.groups.ListGroupMembers,
            groups_pb2.ListGroupMembersRequest(group_id=household.id, page_size=1),
        ),
        (
            api.groups.ListGroupLedgerEntries,
            groups_pb2.ListGroupLedgerEntriesRequest(group_id=household.id, page_size=1),
        ),
    ):
        world.tokens.append(listing(request).next_page_token)
    for key in ("", "\x00", "zzzz", "rew_" + "z" * 40, "' OR 1=1 --"):
        for digest in (filters_digest({}), "0" * 16):
            raw = json.dumps({"k": key, "f": digest}).encode()
            world.tokens.append(base64.urlsafe_b64encode(raw).decode())
    world.tokens += [base64.urlsafe_b64encode(b"[1,2]").decode(), "e30=", "!!!", "===="]
    if fields:
        for listing, request in (
            (api.registry.ListCustomFields, programs_pb2.ListCustomFieldsRequest(page_size=1)),
            (
                api.registry.ListFulfillmentStatuses,
                programs_pb2.ListFulfillmentStatusesRequest(page_size=1),
            ),
        ):
            world.tokens.append(listing(request).next_page_token)
    world.bases = _bases(world, rewards, gold, pool, points, fine)
    world.bases |= _group_bases(world, gold, shared_a, points, fine)
    if fields:
        world.bases |= _registry_bases(world)
    return world


def _bases(world, rewards, gold, pool, points, fine) -> dict[str, list]:
    """Valid requests per RPC; hypothesis mutates their fields."""
    c, i, p = catalog_pb2, issuance_pb2, participants_pb2
    full = c.Reward(
        name="Full",
        description="every field",
        category="fuzz",
        type=common_pb2.REWARD_TYPE_POINTS,
        points=c.PointsConfig(asset_id=points.id, amount="5"),
        cost_asset_id=fine.id,
        unit_cost="0.5",
        max_total=100,
        max_per_participant=10,
        limits=[
            c.RewardLimit(
                scope=common_pb2.LIMIT_SCOPE_GLOBAL,
                max_quantity=50,
                window=duration_pb2.Duration(seconds=3600),
            )
        ],
        available_from=_ts(-timedelta(hours=1)),
        available_until=_ts(timedelta(days=30)),
        segments=[common_pb2.Segment(segment="tier", partition="gold")],
        metadata={"source": "fuzz"},
    )
    amount_based = c.Reward(
        name="Miles",
        type=common_pb2.REWARD_TYPE_PRODUCT,
        product=c.ProductConfig(product_id="miles", quantity=1),
        redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        cost_asset_id=points.id,
        unit_cost="2.2727",
    )
    coupon = c.Reward(
        name="Coupon",
        type=common_pb2.REWARD_TYPE_UNIQUE_COUPON,
        unique_coupon=c.UniqueCouponConfig(code_pool_id=pool.id),
    )
    shared = c.Reward(
        name="Shared",
        type=common_pb2.REWARD_TYPE_NON_UNIQUE_COUPON,
        non_unique_coupon=c.NonUniqueCouponConfig(
            code="X", discount_type=common_pb2.DISCOUNT_TYPE_FIXED, discount_value="2.50"
        ),
    )
    entry = c.Reward(
        name="Draw",
        type=common_pb2.REWARD_TYPE_COMPETITION_ENTRY,
        competition_entry=c.CompetitionEntryConfig(competition_id="cup", entries=2),
    )
    target = world.api.catalog.CreateReward(c.CreateRewardRequest(reward=full))
    target.ClearField("etag")
    by_id = common_pb2.ParticipantRef(id=gold.id)
    refs = [
        by_id,
        common_pb2.ParticipantRef(external_id="gold-1"),
        common_pb2.ParticipantRef(email="gold@example.com"),
        common_pb2.ParticipantRef(mobile="+15550002"),
    ]
    issue = [
        i.IssueRewardRequest(
            reward_id=rewards[kind].id,
            participant=ref,
            quantity=quantity,
            amount=amount,
            transaction_number="T-1",
            notes="fuzz",
            metadata={"m": "1"},
            custom_fields={"size": "L"},
            fulfillment_status="NEW",
            event_time=_ts(-timedelta(minutes=5)),
            owner=common_pb2.Owner(owner_type=common_pb2.OWNER_TYPE_CAMPAIGNS, owner_id="c-1"),
        )
        for kind, ref, quantity, amount in (
            ("product", by_id, 2, ""),
            ("points", refs[1], 1, ""),
            ("fine_points", by_id, 3, ""),
            ("priced", refs[2], 1, ""),
            ("amount", by_id, 0, "10.5"),
            ("coupon", refs[1], 1, ""),
            ("shared", refs[3], 1, ""),
            ("limited", by_id, 1, ""),
            ("draft", by_id, 1, ""),
        )
    ]
    issuance_id = world.ids["issuance"][0]
    e = events_pb2
    issued_only = [e.EVENT_TYPE_ISSUANCE_ISSUED, e.EVENT_TYPE_BALANCE_CHANGED]
    return {
        "WatchEvents": [
            e.WatchEventsRequest(),
            e.WatchEventsRequest(after_position=3, types=issued_only),
            e.WatchEventsRequest(consumer="seen"),
        ],
        "ListEvents": [
            e.ListEventsRequest(page_size=2),
            e.ListEventsRequest(after_position=2, types=issued_only),
        ],
        "AckEvents": [e.AckEventsRequest(consumer="fresh", position=2)],
        "CreateReward": [
            c.CreateRewardRequest(reward=r) for r in (full, amount_based, coupon, shared, entry)
        ],
        "GetReward": [c.GetRewardRequest(id=rewards["product"].id)],
        "ListRewards": [
            c.ListRewardsRequest(page_size=2),
            c.ListRewardsRequest(
                status=common_pb2.REWARD_STATUS_ACTIVE,
                type=common_pb2.REWARD_TYPE_POINTS,
                category="fuzz",
                show_archived=True,
            ),
        ],
        "UpdateReward": [
            c.UpdateRewardRequest(reward=target, update_mask=field_mask_pb2.FieldMask(paths=["*"])),
            c.UpdateRewardRequest(
                reward=c.Reward(id=target.id, name="Renamed", max_total=200),
                update_mask=field_mask_pb2.FieldMask(paths=["name", "max_total"]),
            ),
            c.UpdateRewardRequest(
                reward=c.Reward(id=target.id, status=common_pb2.REWARD_STATUS_INACTIVE),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            ),
            c.UpdateRewardRequest(
                reward=c.Reward(id=target.id, points=c.PointsConfig(amount="7")),
                update_mask=field_mask_pb2.FieldMask(paths=["points.amount"]),
            ),
        ],
        "DeleteReward": [c.DeleteRewardRequest(id=rewards["draft"].id, etag="v1")],
        "CreateAsset": [c.CreateAssetRequest(asset=c.Asset(code="GEMS", name="Gems", scale=3))],
        "GetAsset": [c.GetAssetRequest(id=points.id)],
        "ListAssets": [c.ListAssetsRequest(page_size=1)],
        "CreateCodePool": [
            c.CreateCodePoolRequest(code_pool=c.CodePool(name="Pool", description="fuzz"))
        ],
        "GetCodePool": [c.GetCodePoolRequest(id=pool.id)],
        "ListCodePools": [c.ListCodePoolsRequest(page_size=1)],
        "AddCodes": [c.AddCodesRequest(code_pool_id=pool.id, codes=["N1", "N2", "C1"])],
        "IssueReward": issue,
        "BatchIssueRewards": [i.BatchIssueRewardsRequest(requests=issue[:3])],
        "GrantCustomReward": [
            i.GrantCustomRewardRequest(
                participant=ref,
                amount="5.00",
                action_code="review.posted",
                client_reference="grant-1",
                notes="fuzz",
                metadata={"m": "1"},
            )
            for ref in refs[:3]
        ],
        "GetIssuance": [i.GetIssuanceRequest(id=issuance_id)],
        "ListIssuances": [
            i.ListIssuancesRequest(
                page_size=2,
                participant=by_id,
                reward_id=rewards["product"].id,
                status=common_pb2.ISSUANCE_STATUS_CONFIRMED,
                type=common_pb2.REWARD_TYPE_PRODUCT,
                created_after=_ts(-timedelta(days=1)),
                created_before=_ts(timedelta(days=1)),
            )
        ],
        "ClaimIssuance": [i.ClaimIssuanceRequest(id=issuance_id)],
        "RevokeIssuance": [
            i.RevokeIssuanceRequest(id=world.ids["issuance"][k], reason="fuzz") for k in range(3)
        ],
        "UpdateFulfillment": [
            i.UpdateFulfillmentRequest(id=issuance_id, status="SHIPPED", note="fuzz")
        ],
        "UpsertParticipant": [
            p.UpsertParticipantRequest(
                participant=p.Participant(
                    external_id="fuzz-1",
                    email="fuzz@example.com",
                    mobile="+44 20 7946 0000",
                    segments=[common_pb2.Segment(segment="tier", partition="gold")],
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["email"]),
            )
        ],
        "GetParticipant": [p.GetParticipantRequest(id=gold.id)],
        "ListParticipants": [
            p.ListParticipantsRequest(page_size=2, segment="tier", partition="gold"),
            p.ListParticipantsRequest(email="shared@example.com", mobile="+15550002"),
        ],
        "GetBalance": [p.GetBalanceRequest(participant=ref, asset_id=points.id) for ref in refs],
        "ListLedgerEntries": [
            p.ListLedgerEntriesRequest(participant=by_id, asset_id=points.id, page_size=2)
        ],
        "AdjustBalance": [
            p.AdjustBalanceRequest(
                participant=ref, asset_id=asset, delta=delta, reason="fuzz", request_id=rid
            )
            for ref, asset, delta, rid in (
                (by_id, points.id, "1.00", ""),
                (refs[1], fine.id, "-0.00000001", "adj-1"),
            )
        ],
    }


def _group_bases(world, gold, newcomer, points, fine) -> dict[str, list]:
    g = groups_pb2
    household, lonely = world.ids["group"]
    by_id = common_pb2.ParticipantRef(id=gold.id)
    return {
        "CreateGroup": [
            g.CreateGroupRequest(group=g.Group(name="household"), request_id="grp-household"),
            g.CreateGroupRequest(group=g.Group(name="Office", metadata={"floor": "2"})),
        ],
        "GetGroup": [g.GetGroupRequest(id=household)],
        "ListGroups": [g.ListGroupsRequest(page_size=1)],
        "AddGroupMember": [
            g.AddGroupMemberRequest(group_id=lonely, participant=f.ref(newcomer.id)),
            g.AddGroupMemberRequest(
                group_id=lonely, participant=common_pb2.ParticipantRef(external_id="gold-1")
            ),
        ],
        "RemoveGroupMember": [g.RemoveGroupMemberRequest(group_id=household, participant=by_id)],
        "ListGroupMembers": [g.ListGroupMembersRequest(group_id=household, page_size=1)],
        "GetGroupBalance": [g.GetGroupBalanceRequest(group_id=household, asset_id=points.id)],
        "ListGroupLedgerEntries": [
            g.ListGroupLedgerEntriesRequest(group_id=household, asset_id=points.id, page_size=1),
            g.ListGroupLedgerEntriesRequest(group_id=household),
        ],
        "AdjustGroupBalance": [
            g.AdjustGroupBalanceRequest(
                group_id=household, asset_id=points.id, delta="100.00", request_id="gadj-1"
            ),
            g.AdjustGroupBalanceRequest(
                group_id=household, asset_id=fine.id, delta="0.5", reason="fuzz"
            ),
            g.AdjustGroupBalanceRequest(group_id=household, asset_id=points.id, delta="-1.25"),
        ],
    }


def _registry_bases(world) -> dict[str, list]:
    r = programs_pb2
    return {
        "CreateCustomField": [
            r.CreateCustomFieldRequest(
                custom_field=r.CustomField(key="color", type=r.CUSTOM_FIELD_TYPE_STRING),
                request_id="cfd-color",
            ),
            r.CreateCustomFieldRequest(
                custom_field=r.CustomField(
                    key="size", type=r.CUSTOM_FIELD_TYPE_INTEGER, required=True
                )
            ),
        ],
        "GetCustomField": [r.GetCustomFieldRequest(id=world.ids["custom_field"][0])],
        "ListCustomFields": [r.ListCustomFieldsRequest(page_size=1)],
        "DeleteCustomField": [r.DeleteCustomFieldRequest(id=world.ids["custom_field"][0])],
        "CreateFulfillmentStatus": [
            r.CreateFulfillmentStatusRequest(
                fulfillment_status=r.FulfillmentStatus(status="DELIVERED"),
                request_id="fst-DELIVERED",
            ),
            r.CreateFulfillmentStatusRequest(
                fulfillment_status=r.FulfillmentStatus(status="SHIPPED")
            ),
        ],
        "GetFulfillmentStatus": [
            r.GetFulfillmentStatusRequest(id=world.ids["fulfillment_status"][0])
        ],
        "ListFulfillmentStatuses": [r.ListFulfillmentStatusesRequest(page_size=1)],
        "DeleteFulfillmentStatus": [
            r.DeleteFulfillmentStatusRequest(id=world.ids["fulfillment_status"][0])
        ],
    }


# State


PROGRAM_TABLES = (
    Reward,
    Asset,
    CodePool,
    Participant,
    Issuance,
    LedgerEntry,
    ParticipantGroup,
    GroupLedgerEntry,
    CustomFieldDef,
    FulfillmentStatusDef,
)
# Tables keyed by program and another column, in that order.
PROGRAM_KEYED = ((Event, Event.position), (EventConsumer, EventConsumer.name))


@functools.lru_cache(maxsize=256)
def _snapshot_queries(program_id: str) -> tuple[tuple[str, str, tuple], ...]:
    """(table, SQL, parameters) reading every row the program owns, built once per program:
    a sweep snapshots after every call, and building the statements costs more than running
    them."""
    queries = {}
    for model in PROGRAM_TABLES:
        queries[model.__name__] = (
            model.select().where(model.program == program_id).order_by(model.id)
        )
    for model, key in PROGRAM_KEYED:
        queries[model.__name__] = model.select().where(model.program == program_id).order_by(key)
    pools = CodePool.select(CodePool.id).where(CodePool.program == program_id)
    queries["Code"] = Code.select().where(Code.pool.in_(pools)).order_by(Code.id)
    people = Participant.select(Participant.id).where(Participant.program == program_id)
    queries["Balance"] = (
        Balance.select().where(Balance.participant.in_(people)).order_by(Balance.id)
    )
    groups = ParticipantGroup.select(ParticipantGroup.id).where(
        ParticipantGroup.program == program_id
    )
    members = GroupMember.select().where(GroupMember.group.in_(groups))
    queries["GroupMember"] = members.order_by(GroupMember.participant)
    held = GroupBalance.select().where(GroupBalance.group.in_(groups))
    queries["GroupBalance"] = held.order_by(GroupBalance.id)
    # The registries' version: a refused registry change must not bump it either.
    queries["Program"] = Program.select().where(Program.id == program_id)
    return tuple((name, *query.sql()) for name, query in queries.items())


def snapshot(program_id: str) -> dict[str, list[tuple]]:
    """Every row the program owns, in a comparable form (as stored)."""
    with session():
        run = Program._meta.database.execute_sql
        return {
            name: [tuple(row) for row in run(sql, params).fetchall()]
            for name, sql, params in _snapshot_queries(program_id)
        }


def _short(request) -> str:
    text = str(request).replace("\n", " ")
    return text if len(text) < 600 else text[:600] + f"... ({len(text)} chars)"


class Refused(Exception):
    """An answer outside the contract: (code, details)."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details[:300]!r}")
        self.code, self.details = code, details


def status_of(error: grpc.RpcError, allowed=frozenset(ALLOWED)):
    """The rich status of a failed call, or Refused when the client cannot read one."""
    code, details = error.code(), error.details() or ""
    if code not in allowed:
        raise Refused(code, details)
    try:
        status = rpc_status.from_call(error)
    except ValueError as exc:  # the trailers disagree with the status line
        raise Refused(code, f"{details} ({exc})") from exc
    if status is None:
        raise Refused(code, f"{details} (no google.rpc.Status)")
    return code, status


def check_details(code: grpc.StatusCode, status, where) -> str:
    """Exactly one ErrorInfo of our domain (and a BadRequest for field errors); no leaks.
    Returns the reason."""
    infos, bad_requests = unpack_details(status)
    assert status.code == code.value[0], where()
    assert len(infos) == 1, f"{len(infos)} ErrorInfo details: {where()}"
    assert infos[0].domain == "rewards.v1" and infos[0].reason, where()
    if infos[0].reason == "VALIDATION_FAILED":
        assert len(bad_requests) == 1 and bad_requests[0].field_violations, where()
    assert not any(leak in status.message for leak in LEAKS), f"{status.message!r}: {where()}"
    return infos[0].reason


# Bugs pinned by a strict xfail test but not fixed yet: name -> predicate(method, request,
# refused). An answer that matches one is counted, not failed, so the search goes on for new
# bugs meanwhile; the entry goes when the bug is fixed.
KNOWN_BUGS: dict[str, Callable[[str, object, Refused], bool]] = {}


@dataclass
class Run:
    world: World
    method: str
    last: dict[str, list[tuple]]
    tried: int = 0
    codes: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.codes[key] = self.codes.get(key, 0) + 1


def first_of_stream(stream):
    """A stream's first message (an event or a heartbeat): the call was accepted."""
    try:
        return next(stream)
    finally:
        stream.cancel()


def call_once(run: Run, request) -> None:
    api = run.world.api
    stub = next(
        s
        for s in (api.catalog, api.issuance, api.participants, api.events, api.groups, api.registry)
        if hasattr(s, run.method)
    )
    run.tried += 1

    def where() -> str:
        return f"{run.method}({_short(request)})"

    try:
        if run.method == "WatchEvents":
            response = first_of_stream(stub.WatchEvents(request, timeout=TIMEOUT))
        else:
            response = getattr(stub, run.method)(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        try:
            code, status = status_of(error, ALLOWED | EXTRA_ALLOWED.get(run.method, set()))
        except Refused as refused:
            known = [n for n, bug in KNOWN_BUGS.items() if bug(run.method, request, refused)]
            assert known, f"{refused} for {where()}"
            run.count(f"known bug: {known[0]}")
            run.last = snapshot(run.world.program_id)
            return
        reason = check_details(code, status, where)
        run.count(f"{code.name}/{reason}")
        after = snapshot(run.world.program_id)
        changed = [table for table in after if after[table] != run.last[table]]
        assert not changed, f"failed with {code.name} {reason} yet changed {changed}: {where()}"
        return
    run.count("OK")
    after = snapshot(run.world.program_id)
    created = len(after["Issuance"]) - len(run.last["Issuance"])
    if run.method == "BatchIssueRewards":
        for k, result in enumerate(response.results):
            if result.HasField("error"):
                code = next(c for c in grpc.StatusCode if c.value[0] == result.error.code)
                assert code in ALLOWED, f"item {k}: {code.name} {result.error.message}: {where()}"
                check_details(code, result.error, where)
        fresh = sum(r.HasField("issuance") and not r.idempotent_replay for r in response.results)
        assert created == fresh, where()
    elif run.method in ("IssueReward", "GrantCustomReward"):
        assert created == (0 if response.idempotent_replay else 1), where()
    else:
        assert created == 0, where()
    run.last = after


SWEPT = (
    (catalog_pb2, "RewardCatalog"),
    (issuance_pb2, "RewardIssuance"),
    (participants_pb2, "Participants"),
    (events_pb2, "Events"),
    (groups_pb2, "ParticipantGroups"),
    (programs_pb2, "ProgramRegistry"),
)


def _request_type(method: str):
    for module, service in SWEPT:
        found = module.DESCRIPTOR.services_by_name[service].methods_by_name.get(method)
        if found is not None:
            return found.input_type
    raise KeyError(method)


ALL_METHODS = [
    method.name
    for module, service in SWEPT
    for method in module.DESCRIPTOR.services_by_name[service].methods
]
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # well under the server's limit, tested on its own below


@pytest.fixture(scope="module")
def quick_heartbeats(store):
    """A server whose idle streams beat at once: an accepted WatchEvents with no event to
    send answers without waiting the default interval."""
    config = Config(listen="127.0.0.1:0", database_url=store, threads=8, event_heartbeat=0.05)
    running = build_server(config)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as quick:
        yield quick
    running.stop(grace=1)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_field_of_every_rpc_survives_hostile_values(request, channel, method):
    if method == "WatchEvents":
        channel = request.getfixturevalue("quick_heartbeats")
    world = build_world(channel, method)
    world.method = method
    bases = world.bases[method]
    descriptor = _request_type(method)
    assert all(base.DESCRIPTOR is descriptor for base in bases)
    paths = leaf_paths(descriptor)
    run = Run(world, method, snapshot(world.program_id))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not os.environ.get("REWARDS_HOSTILE_RANDOM"),
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(data=st.data())
    def attempt(data):
        request = type(bases[0])()
        if data.draw(st.integers(0, 9), label="from scratch") != 0:
            request.CopyFrom(data.draw(st.sampled_from(bases), label="base"))
        for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4)):
            mutate(data, world, request, path)
        assume(request.ByteSize() <= MAX_REQUEST_BYTES)
        call_once(run, request)

    attempt()
    with _tried_lock:
        TRIED[method] = TRIED.get(method, 0) + run.tried
    print(f"{method}: {run.tried} inputs: {run.codes}")
    assert run.tried >= min(EXAMPLES, 20)
    # The inputs reached past validation: some calls were answered with something else.
    assert set(run.codes) - {"INVALID_ARGUMENT/VALIDATION_FAILED"}, run.codes


# The wire


def _raw(channel: grpc.Channel, method: str):
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


def _serving(channel: grpc.Channel, api: Api) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert api.catalog.ListAssets(catalog_pb2.ListAssetsRequest(), timeout=5) is not None


MALFORMED = {
    "truncated tag": b"\xff",
    "length past the end": b"\x0a\x05abc",
    "length of 4 GiB": b"\x0a\xff\xff\xff\xff\x0f",
    "invalid UTF-8 in a string": b"\x0a\x02\xc3\x28",
    "wire type 7": b"\x0f",
    "unterminated group": b"\x0b",
    "varint of 11 bytes": b"\x18" + b"\xff" * 10 + b"\x01",
    "random bytes": bytes(range(256)) * 4,
}
# Field 1 of these requests is a message; its body is corrupt.
NESTED_FIRST = {"CreateReward", "BatchIssueRewards", "UpsertParticipant", "AdjustBalance"}
RAW_METHODS = [
    "/rewards.v1.RewardCatalog/GetReward",
    "/rewards.v1.RewardCatalog/CreateReward",
    "/rewards.v1.RewardCatalog/AddCodes",
    "/rewards.v1.RewardIssuance/IssueReward",
    "/rewards.v1.RewardIssuance/BatchIssueRewards",
    "/rewards.v1.Participants/UpsertParticipant",
    "/rewards.v1.Participants/AdjustBalance",
]


def test_malformed_bytes_get_an_error_and_the_server_keeps_serving(channel, admin):
    metadata = (("authorization", f"Bearer {admin.key}"),)
    f.reward(admin)
    before = snapshot(admin.program_id)
    answers = set()
    for method in RAW_METHODS:
        cases = dict(MALFORMED)
        if method.rsplit("/", 1)[1] in NESTED_FIRST:
            cases["corrupt nested message"] = b"\x0a\x03\x0a\x05x"
        for name, raw in cases.items():
            with pytest.raises(grpc.RpcError) as caught:
                _raw(channel, method)(raw, metadata=metadata, timeout=10)
            code = caught.value.code()
            assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL}, (
                method,
                name,
                code,
            )
            assert "Traceback" not in (caught.value.details() or "")
            answers.add(code)
        _serving(channel, admin)
    assert snapshot(admin.program_id) == before
    # Well-formed bytes with unknown fields are read as the message they hold.
    unknown_field = b"\x0a\x07rew_nop" + b"\xa0\x06\x01" + b"\xaa\x06\x02hi"
    with pytest.raises(grpc.RpcError) as caught:
        _raw(channel, RAW_METHODS[0])(unknown_field, metadata=metadata, timeout=10)
    assert failure_code_and_reason(caught.value) == (
        grpc.StatusCode.NOT_FOUND,
        "REWARD_NOT_FOUND",
    )
    # An unknown method of our package is UNIMPLEMENTED, without a key or with one.
    for extra in ((), metadata):
        with pytest.raises(grpc.RpcError) as caught:
            _raw(channel, "/rewards.v1.RewardCatalog/DropEverything")(b"", metadata=extra)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    _serving(channel, admin)


def failure_code_and_reason(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    code, status = status_of(error)
    return code, check_details(code, status, lambda: "raw call")


def test_malformed_bytes_are_invalid_argument_with_error_info(channel, admin):
    metadata = (("authorization", f"Bearer {admin.key}"),)
    with pytest.raises(grpc.RpcError) as caught:
        _raw(channel, RAW_METHODS[0])(MALFORMED["truncated tag"], metadata=metadata, timeout=10)
    code, _ = failure_code_and_reason(caught.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_message_over_the_size_limit_is_resource_exhausted(channel, admin):
    pool = f.code_pool(admin, ["KEEP"])
    before = snapshot(admin.program_id)
    code = "c" * 120
    over = catalog_pb2.AddCodesRequest(
        code_pool_id=pool.id, codes=[code] * (MAX_MESSAGE_BYTES // 120 + 8_000)
    )
    assert 9 * 1024 * 1024 <= over.ByteSize() < 10 * 1024 * 1024
    with pytest.raises(grpc.RpcError) as caught:
        admin.catalog.AddCodes(over, timeout=30)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The same through the raw bytes path, and a message just under the limit gets through
    # to the service (which refuses it for holding too many codes).
    metadata = (("authorization", f"Bearer {admin.key}"),)
    with pytest.raises(grpc.RpcError) as caught:
        _raw(channel, "/rewards.v1.RewardCatalog/AddCodes")(
            over.SerializeToString(), metadata=metadata, timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    under = catalog_pb2.AddCodesRequest(
        code_pool_id=pool.id, codes=[code] * (MAX_MESSAGE_BYTES // 130)
    )
    assert 7 * 1024 * 1024 < under.ByteSize() < MAX_MESSAGE_BYTES
    with pytest.raises(grpc.RpcError) as caught:
        admin.catalog.AddCodes(under, timeout=30)
    assert failure_code_and_reason(caught.value) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "VALIDATION_FAILED",
    )
    assert snapshot(admin.program_id) == before
    _serving(channel, admin)
    got = admin.catalog.GetCodePool(catalog_pb2.GetCodePoolRequest(id=pool.id))
    assert (got.total_count, got.available_count) == (1, 1)


# Bugs the search found, pinned one by one


def refused_cleanly(api: Api, call) -> tuple[grpc.StatusCode, str]:
    """call() fails with a contract error the caller can read, and changes nothing."""
    before = snapshot(api.program_id)
    with pytest.raises(grpc.RpcError) as caught:
        call()
    code, reason = failure_code_and_reason(caught.value)
    assert snapshot(api.program_id) == before
    return code, reason


def test_an_unknown_status_in_update_reward_is_invalid_argument(admin):
    reward = f.reward(admin)
    request = catalog_pb2.UpdateRewardRequest(
        reward=catalog_pb2.Reward(id=reward.id, status=8),
        update_mask=field_mask_pb2.FieldMask(paths=["status"]),
    )
    code, _ = refused_cleanly(admin, lambda: admin.catalog.UpdateReward(request, timeout=TIMEOUT))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


LONG = "x" * 20_000  # past the 16 KiB hard limit, not only the 8 KiB soft one


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.catalog.GetReward(catalog_pb2.GetRewardRequest(id=LONG), timeout=10),
        lambda api: api.issuance.ClaimIssuance(
            issuance_pb2.ClaimIssuanceRequest(id=LONG), timeout=10
        ),
        lambda api: api.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(participant=common_pb2.ParticipantRef(mobile=LONG)),
            timeout=10,
        ),
        lambda api: api.participants.UpsertParticipant(
            participants_pb2.UpsertParticipantRequest(
                participant=participants_pb2.Participant(external_id="u"),
                update_mask=field_mask_pb2.FieldMask(paths=[LONG]),
            ),
            timeout=10,
        ),
    ],
    ids=["GetReward id", "ClaimIssuance id", "ListIssuances participant", "update_mask path"],
)
def test_an_error_about_a_long_value_reaches_the_caller(admin, call):
    before = snapshot(admin.program_id)
    with pytest.raises(grpc.RpcError) as caught:
        call(admin)
    code, _ = failure_code_and_reason(caught.value)
    assert code in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}
    assert snapshot(admin.program_id) == before


@pytest.mark.parametrize("method", ["GetReward", "UpdateFulfillment"])
def test_an_error_about_a_long_non_ascii_value_reaches_the_caller(admin, method):
    value = "\U0001f600" * 2_000

    def call():
        if method == "GetReward":
            return admin.catalog.GetReward(catalog_pb2.GetRewardRequest(id=value), timeout=10)
        return admin.issuance.UpdateFulfillment(
            issuance_pb2.UpdateFulfillmentRequest(id=value, status="SHIPPED"), timeout=10
        )

    code, _ = refused_cleanly(admin, call)
    assert code == grpc.StatusCode.NOT_FOUND


def test_many_bad_fields_fit_one_error(admin):
    reward = catalog_pb2.Reward(
        name="Many",
        type=common_pb2.REWARD_TYPE_PRODUCT,
        product=catalog_pb2.ProductConfig(product_id="p"),
        limits=[catalog_pb2.RewardLimit()] * 501,
    )
    request = catalog_pb2.CreateRewardRequest(reward=reward)
    code, reason = refused_cleanly(admin, lambda: admin.catalog.CreateReward(request, timeout=30))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED")


def test_a_rolling_window_of_ten_thousand_years(admin):
    window = [(common_pb2.LIMIT_SCOPE_PARTICIPANT, 2, 315_576_000_000)]
    try:
        reward = f.reward(admin, limits=window)
    except grpc.RpcError as error:  # refusing such a window up front is fine too
        assert failure_code_and_reason(error)[0] == grpc.StatusCode.INVALID_ARGUMENT
        return
    user = f.participant(admin)
    assert f.issue(admin, reward.id, user.id).issuance.quantity == 1
    assert f.issue(admin, reward.id, user.id).issuance.quantity == 1
    code, reason = refused_cleanly(admin, lambda: f.issue(admin, reward.id, user.id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PARTICIPANT_LIMIT_REACHED")


@pytest.mark.parametrize("kind", ["amount based", "unit based"])
def test_a_cost_beyond_decimal_precision_is_refused_cleanly(admin, kind):
    fine = f.asset(admin, "FINE", scale=8)
    user = f.participant(admin)
    f.fund(admin, user.id, fine.id, "1000")
    if kind == "amount based":
        reward = f.reward(
            admin,
            cost_asset_id=fine.id,
            unit_cost="2.5",
            redemption_type=common_pb2.REDEMPTION_TYPE_AMOUNT_BASED,
        )
        issue = {"amount": "99999999999999999999"}
    else:
        reward = f.reward(admin, cost_asset_id=fine.id, unit_cost="99999999999999999999")
        issue = {"quantity": 10}
    code, _ = refused_cleanly(admin, lambda: f.issue(admin, reward.id, user.id, **issue))
    assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
    assert f.balance(admin, user.id, fine.id).available == "1000.00000000"


def test_a_balance_beyond_the_column_is_refused_cleanly(admin):
    """Each delta is bounded, so a balance grows past the 64-bit column only over many calls;
    the call that would take it there is refused like any other."""
    points = f.asset(admin)
    user = f.participant(admin)
    largest = "9999999999999999.99"
    for _ in range(12):
        try:
            f.fund(admin, user.id, points.id, largest)
        except grpc.RpcError:
            break
    else:
        raise AssertionError("the balance kept growing past 10**18 minor units")
    balance = f.balance(admin, user.id, points.id).available
    code, _ = refused_cleanly(admin, lambda: f.fund(admin, user.id, points.id, largest))
    assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
    assert f.balance(admin, user.id, points.id).available == balance


@pytest.mark.parametrize(
    "case", ["GetReward id", "reward name", "participant reference", "page token"]
)
def test_a_nul_character_is_refused_or_kept(admin, case):
    if case == "GetReward id":
        call, request = admin.catalog.GetReward, catalog_pb2.GetRewardRequest(id="rew_\x00")
    elif case == "reward name":
        reward = catalog_pb2.Reward(
            name="a\x00b",
            type=common_pb2.REWARD_TYPE_PRODUCT,
            product=catalog_pb2.ProductConfig(product_id="p"),
        )
        call, request = admin.catalog.CreateReward, catalog_pb2.CreateRewardRequest(reward=reward)
    elif case == "participant reference":
        points = f.asset(admin)
        call = admin.participants.GetBalance
        request = participants_pb2.GetBalanceRequest(
            participant=common_pb2.ParticipantRef(external_id="u\x00"), asset_id=points.id
        )
    else:
        raw = json.dumps({"k": "\x00", "f": filters_digest({})}).encode()
        token = base64.urlsafe_b64encode(raw).decode()
        call, request = admin.catalog.ListAssets, catalog_pb2.ListAssetsRequest(page_token=token)
    before = snapshot(admin.program_id)
    try:
        response = call(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        code, _ = failure_code_and_reason(error)
        assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
        assert snapshot(admin.program_id) == before
        return
    if case == "reward name":  # kept: it reads back as sent
        got = admin.catalog.GetReward(catalog_pb2.GetRewardRequest(id=response.id))
        assert got.name == "a\x00b"


def test_a_mobile_of_33_characters_is_refused_or_kept(admin):
    mobile = "+" + "1" * 32
    before = snapshot(admin.program_id)
    try:
        created = f.participant(admin, "long-mobile", mobile=mobile)
    except grpc.RpcError as error:
        assert failure_code_and_reason(error)[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert snapshot(admin.program_id) == before
        return
    got = admin.participants.GetParticipant(participants_pb2.GetParticipantRequest(id=created.id))
    assert got.mobile == mobile


def test_a_nul_in_one_batch_item_fails_that_item_alone(admin):
    reward = f.reward(admin)
    user = f.participant(admin)
    good = issuance_pb2.IssueRewardRequest(reward_id=reward.id, participant=f.ref(user.id))
    bad = issuance_pb2.IssueRewardRequest(
        reward_id=reward.id, participant=f.ref(user.id), notes="a\x00b"
    )
    answer = admin.issuance.BatchIssueRewards(
        issuance_pb2.BatchIssueRewardsRequest(requests=[good, bad, good]), timeout=TIMEOUT
    )
    first, refused, last = answer.results
    assert first.HasField("issuance") and last.HasField("issuance")
    assert refused.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    infos, bad_requests = unpack_details(refused.error)
    assert [info.reason for info in infos] == ["VALIDATION_FAILED"]
    assert [v.field for b in bad_requests for v in b.field_violations] == ["notes"]
    assert f.get_reward(admin, reward.id).redeemed_count == 2


def test_hostile_event_feed_requests_are_refused_cleanly(admin):
    f.reward(admin)
    e = events_pb2
    ack, listing = admin.events.AckEvents, admin.events.ListEvents
    refusals = {
        "long consumer": lambda: ack(e.AckEventsRequest(consumer="c" * 3_000_000, position=1)),
        "NUL consumer": lambda: ack(e.AckEventsRequest(consumer="a\x00b", position=1)),
        "negative position": lambda: ack(e.AckEventsRequest(consumer="c", position=-1)),
        "position not reached": lambda: ack(e.AckEventsRequest(consumer="c", position=2**63 - 1)),
        "unknown type": lambda: listing(e.ListEventsRequest(types=[2**31 - 1])),
        "negative page size": lambda: listing(e.ListEventsRequest(page_size=-(2**31))),
        "garbage token": lambda: listing(e.ListEventsRequest(page_token="\x00" * 5000)),
        "unknown type in a watch": lambda: next(
            admin.events.WatchEvents(e.WatchEventsRequest(types=[-5]), timeout=TIMEOUT)
        ),
    }
    for name, call in refusals.items():
        code, reason = refused_cleanly(admin, call)
        assert code in {
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.FAILED_PRECONDITION,
        }, (name, code, reason)
    # Past the message size limit: refused by the transport before any of our code.
    with pytest.raises(grpc.RpcError) as caught:
        ack(e.AckEventsRequest(consumer="c" * (10 * 1024 * 1024), position=1), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The largest page size is clamped; a position past the end lists nothing.
    assert len(listing(e.ListEventsRequest(page_size=2**31 - 1)).events) == 1
    assert not listing(e.ListEventsRequest(after_position=2**63 - 1)).events


def test_hostile_group_and_registry_requests_are_refused_cleanly(admin):
    g, r = groups_pb2, programs_pb2
    points = f.asset(admin)
    member = f.participant(admin)
    home = _group(admin, "home", [member.id])
    other = _group(admin, "other", [])
    admin.groups.AdjustGroupBalance(
        g.AdjustGroupBalanceRequest(group_id=home.id, asset_id=points.id, delta="10")
    )
    _registry(admin)
    megabyte = "g" * (1024 * 1024)
    groups, registry = admin.groups, admin.registry

    def adjust(delta: str, request_id: str = ""):
        request = g.AdjustGroupBalanceRequest(
            group_id=home.id, asset_id=points.id, delta=delta, request_id=request_id
        )
        return lambda: groups.AdjustGroupBalance(request, timeout=TIMEOUT)

    refusals = {
        "long name": lambda: groups.CreateGroup(g.CreateGroupRequest(group=g.Group(name=megabyte))),
        "long group id": lambda: groups.GetGroup(g.GetGroupRequest(id=megabyte)),
        "long group id of a member": lambda: groups.AddGroupMember(
            g.AddGroupMemberRequest(group_id=megabyte, participant=f.ref(member.id))
        ),
        "long group id of a balance": lambda: groups.AdjustGroupBalance(
            g.AdjustGroupBalanceRequest(group_id=megabyte, asset_id=points.id, delta="1")
        ),
        "member of another group": lambda: groups.AddGroupMember(
            g.AddGroupMemberRequest(group_id=other.id, participant=f.ref(member.id))
        ),
        "long status": lambda: registry.CreateFulfillmentStatus(
            r.CreateFulfillmentStatusRequest(
                fulfillment_status=r.FulfillmentStatus(status=megabyte)
            )
        ),
        "long custom field id": lambda: registry.DeleteCustomField(
            r.DeleteCustomFieldRequest(id=megabyte)
        ),
    }
    for delta in ("1e9999", "NaN", "-0", " 1", "1_000", "-1e9999", "0.001"):
        refusals[f"delta {delta!r}"] = adjust(delta)
        refusals[f"delta {delta!r} with a request_id"] = adjust(delta, "adj-" + delta)
    for name, call in refusals.items():
        code, reason = refused_cleanly(admin, call)
        assert code in {
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION,
        }, (name, code, reason)
    # The largest page size is clamped on every list.
    largest = 2**31 - 1
    lists = {
        "groups": groups.ListGroups(g.ListGroupsRequest(page_size=largest)).groups,
        "members": groups.ListGroupMembers(
            g.ListGroupMembersRequest(group_id=home.id, page_size=largest)
        ).members,
        "entries": groups.ListGroupLedgerEntries(
            g.ListGroupLedgerEntriesRequest(group_id=home.id, page_size=largest)
        ).entries,
        "entries of an asset": groups.ListGroupLedgerEntries(
            g.ListGroupLedgerEntriesRequest(group_id=home.id, asset_id=points.id, page_size=largest)
        ).entries,
        "custom fields": registry.ListCustomFields(
            r.ListCustomFieldsRequest(page_size=largest)
        ).custom_fields,
        "statuses": registry.ListFulfillmentStatuses(
            r.ListFulfillmentStatusesRequest(page_size=largest)
        ).fulfillment_statuses,
    }
    assert {name: len(found) for name, found in lists.items()} == {
        "groups": 2,
        "members": 1,
        "entries": 1,
        "entries of an asset": 1,
        "custom fields": 2,
        "statuses": 2,
    }
