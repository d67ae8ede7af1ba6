"""List pages are read in one step (on SQLite, packed into one JSON array by SQLite): the rows
must come back exactly as peewee reads them, whatever the text and numbers hold."""

from rewards.v1 import catalog_pb2, issuance_pb2

from rewards_service.store import fast
from rewards_service.store.db import session
from rewards_service.store.models import Issuance, LedgerEntry, Participant, Reward
from tests import factories as f

AWKWARD = 'é 😀 "quoted" back\\slash\nnew line \u2028 tab\t NUL-free'


def _same_rows(query) -> None:
    with session():
        by_peewee = {row.id: row.__data__ for row in query}
        packed = fast.run_select(query)
    assert by_peewee, "the query selects rows"
    assert len(packed) == len(by_peewee)
    for row in packed:
        assert row.__data__ == by_peewee[row.id]


def test_rows_of_every_listed_kind_come_back_unchanged(admin):
    points = f.asset(admin, scale=2)
    reward = f.reward(
        admin,
        name=AWKWARD[:60],
        description=AWKWARD,
        points=catalog_pb2.PointsConfig(asset_id=points.id, amount="12.34"),
        segments=[("tier", "gold"), ("région", "nord")],
        max_total=10**9,
    )
    user = f.participant(admin, email="ü@example.com", segments=[("tier", "gold")])
    for n in range(3):
        f.issue(
            admin,
            reward.id,
            user.id,
            request_id=f"page-{n}",
            notes=AWKWARD,
            metadata={"ключ": AWKWARD, "plain": ""},
        )
    f.fund(admin, user.id, points.id, "99999999.99")
    program = admin.program_id
    _same_rows(Reward.select().where(Reward.program == program))
    _same_rows(Participant.select().where(Participant.program == program))
    _same_rows(Issuance.select().where(Issuance.program == program))
    _same_rows(LedgerEntry.select().where(LedgerEntry.program == program))


def test_an_empty_page_is_empty(admin):
    with session():
        assert fast.run_select(Issuance.select().where(Issuance.program == admin.program_id)) == []


def test_pages_keep_their_order_and_lose_nothing(admin):
    reward, user = f.reward(admin), f.participant(admin)
    issued = [f.issue(admin, reward.id, user.id).issuance.id for _ in range(7)]
    listed, token = [], ""
    for _ in range(3):  # 7 rows in pages of 3
        page = admin.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(page_size=3, page_token=token)
        )
        listed += [i.id for i in page.issuances]
        token = page.next_page_token
    assert token == ""
    assert listed == sorted(issued, reverse=True)  # newest first
