"""A filtered list page looks at a bounded stretch of its collection: a filter that matches
rarely (or never) answers quickly with a short page and a token to go on (AIP-158), instead of
reading every row of the program in one call. Following the tokens still finds every match,
in order, exactly once."""

from rewards.v1 import common_pb2, events_pb2, issuance_pb2, participants_pb2

from rewards_service.services import events
from rewards_service.store import queries
from tests import factories as f

SCAN = 25
IS = common_pb2.IssuanceStatus
E = events_pb2.EventType


def _pages(fetch) -> list[list]:
    pages, token = [], ""
    while True:
        items, token = fetch(token)
        pages.append(items)
        if not token:
            return pages


def _issuance_pages(api, **filters):
    def fetch(token):
        page = api.issuance.ListIssuances(
            issuance_pb2.ListIssuancesRequest(page_size=10, page_token=token, **filters)
        )
        return list(page.issuances), page.next_page_token

    return _pages(fetch)


def _issued(api, count: int) -> tuple[str, list[str]]:
    """(the participant, the ids of `count` issues to it, oldest first)."""
    reward = f.reward(api)
    user = f.participant(api).id
    return user, [f.issue(api, reward.id, user).issuance.id for _ in range(count)]


def test_a_rare_status_is_found_through_short_pages(admin, monkeypatch):
    monkeypatch.setattr(queries, "SCAN_ROWS", SCAN)
    _, issued = _issued(admin, 70)
    revoked = [issued[1], issued[2], issued[40]]  # the oldest two and one in the middle
    for issuance_id in revoked:
        f.revoke(admin, issuance_id)

    pages = _issuance_pages(admin, status=IS.ISSUANCE_STATUS_REVOKED)

    found = [i.id for page in pages for i in page]
    assert found == sorted(revoked, reverse=True)  # newest first, each once
    # 70 issuances, 25 looked at per page: three pages, the first of them empty.
    assert [len(page) for page in pages] == [0, 1, 2]


def test_a_filter_matching_nothing_ends_with_an_empty_token(admin, monkeypatch):
    monkeypatch.setattr(queries, "SCAN_ROWS", SCAN)
    _issued(admin, 30)

    pages = _issuance_pages(admin, action_code="never-used")

    assert pages == [[], []]


def test_unfiltered_and_participant_pages_stay_full(admin, monkeypatch):
    monkeypatch.setattr(queries, "SCAN_ROWS", SCAN)
    user, _ = _issued(admin, 60)

    assert [len(p) for p in _issuance_pages(admin)] == [10] * 6
    assert [len(p) for p in _issuance_pages(admin, participant=f.ref(user))] == [10] * 6


def test_a_full_page_inside_the_stretch_goes_on_from_its_last_row(admin, monkeypatch):
    monkeypatch.setattr(queries, "SCAN_ROWS", SCAN)
    _, issued = _issued(admin, 40)
    for issuance_id in issued:
        f.revoke(admin, issuance_id)

    pages = _issuance_pages(admin, status=IS.ISSUANCE_STATUS_REVOKED)

    assert [i.id for page in pages for i in page] == issued[::-1]
    assert all(len(page) <= 10 for page in pages)


def test_a_rare_segment_is_found_through_short_pages(admin, monkeypatch):
    monkeypatch.setattr(queries, "SCAN_ROWS", SCAN)
    members = set()
    for n in range(60):
        segments = [("vip", "gold")] if n in (3, 50) else [("tier", "basic")]
        created = f.participant(admin, segments=segments)
        if n in (3, 50):
            members.add(created.id)

    def fetch(token):
        page = admin.participants.ListParticipants(
            participants_pb2.ListParticipantsRequest(page_size=10, page_token=token, segment="vip")
        )
        return list(page.participants), page.next_page_token

    pages = _pages(fetch)

    assert {p.id for page in pages for p in page} == members
    assert sum(len(page) for page in pages) == 2
    assert len(pages) == 3  # 60 participants, 25 looked at per page


def _rare_event_feed(api) -> list[int]:
    """60 balance changes around two revokes: the positions of the two revoke events."""
    reward = f.reward(api)
    user = f.participant(api).id
    first = f.issue(api, reward.id, user).issuance.id
    points = f.asset(api)
    for _ in range(30):
        f.fund(api, user, points.id, "1")
    second = f.issue(api, reward.id, user).issuance.id
    for _ in range(30):
        f.fund(api, user, points.id, "1")
    f.revoke(api, first)
    f.revoke(api, second)
    revoked = api.events.ListEvents(
        events_pb2.ListEventsRequest(page_size=1000, types=[E.EVENT_TYPE_ISSUANCE_REVOKED])
    )
    return [e.position for e in revoked.events]


def test_a_rare_event_type_is_listed_through_short_pages(admin, monkeypatch):
    wanted = _rare_event_feed(admin)
    assert len(wanted) == 2
    monkeypatch.setattr(events, "SCAN_EVENTS", SCAN)

    def fetch(token):
        page = admin.events.ListEvents(
            events_pb2.ListEventsRequest(
                page_size=10, page_token=token, types=[E.EVENT_TYPE_ISSUANCE_REVOKED]
            )
        )
        return [e.position for e in page.events], page.next_page_token

    pages = _pages(fetch)

    assert [p for page in pages for p in page] == wanted
    # 66 events, 25 positions looked at per page; both revokes come last.
    assert [len(page) for page in pages] == [0, 0, 2]


def test_a_watch_with_a_rare_type_goes_through_the_whole_feed(admin, monkeypatch):
    wanted = _rare_event_feed(admin)
    monkeypatch.setattr(events, "SCAN_EVENTS", SCAN)
    stream = admin.events.WatchEvents(
        events_pb2.WatchEventsRequest(types=[E.EVENT_TYPE_ISSUANCE_REVOKED])
    )
    try:
        seen = [next(stream).event.position for _ in wanted]
    finally:
        stream.cancel()
    assert seen == wanted
