"""Programs and API keys (services/programs.py) against an in-memory store: creating programs
and keys, bootstrap, revoking and listing, and authentication with the cache that keeps it
off the store for a while, without a database."""

import pytest

from rewards_service.auth import ROLES, Caller, hash_key
from rewards_service.bounded import BoundedCache
from rewards_service.domain.errors import InvalidArgument, NotFound, Unauthenticated
from rewards_service.services import programs
from rewards_service.store.db import Conflict
from rewards_service.store.models import ApiKey, Program
from tests.unit.fakes import InMemoryStore, Untouchable, copy_row


class FakeProgramStore(InMemoryStore):
    """The program and api_key tables in dicts, keeping what the schema keeps (a key hash
    once, a key of a program that exists) and no more. Rows go in and come out as copies, as
    they would from a database."""

    TABLES = ("programs_by_id", "keys_by_id")

    def __init__(self) -> None:
        super().__init__()
        self.programs_by_id: dict[str, Program] = {}
        self.keys_by_id: dict[str, ApiKey] = {}
        self.key_reads = 0  # key_by_hash calls: what authentication costs the store

    def add(self, row):
        self._writing()
        if isinstance(row, Program):
            self.programs_by_id[row.id] = copy_row(row)
            return
        assert row.program_id in self.programs_by_id, "a key of no program"
        if any(other.key_hash == row.key_hash for other in self.keys_by_id.values()):
            raise Conflict("UNIQUE constraint failed: apikey.key_hash")
        self.keys_by_id[row.id] = copy_row(row)

    def save(self, row):
        self._writing()
        assert row.id in self.keys_by_id, "an update of a key never added"
        self.keys_by_id[row.id] = copy_row(row)

    def has_any_program(self):
        return bool(self.programs_by_id)

    def has_program(self, program_id):
        return program_id in self.programs_by_id

    def programs(self):
        return [copy_row(self.programs_by_id[i]) for i in sorted(self.programs_by_id)]

    def find_key(self, key_id):
        found = self.keys_by_id.get(key_id)
        return None if found is None else copy_row(found)

    def key_by_hash(self, key_hash):
        self.key_reads += 1
        found = (key for key in self.keys_by_id.values() if key.key_hash == key_hash)
        return next((copy_row(key) for key in found), None)

    def keys(self, program_id):
        mine = (key for key in self.keys_by_id.values() if key.program_id == program_id)
        return [copy_row(key) for key in sorted(mine, key=lambda key: key.id)]

    def revoke_elsewhere(self, key_id):
        """As another process's revoke: this one's cache does not hear of it."""
        self.keys_by_id[key_id].revoked_at = programs.utcnow()


class Clock:
    """time.monotonic, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    # Each test starts with nothing remembered, the default lifetime, and its own clock.
    monkeypatch.setattr(programs, "_valid_keys", BoundedCache(programs.AUTH_CACHE_BYTES))
    monkeypatch.setattr(programs, "AUTH_CACHE_SECONDS", 1.0)
    found = Clock()
    monkeypatch.setattr(programs, "time", found)
    return found


@pytest.fixture
def store():
    return FakeProgramStore()


def stored_key(store, issued) -> ApiKey:
    return store.keys_by_id[issued.key_id]


def refused(store, api_key: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as error:
        programs.authenticate(api_key, store=store)
    return error.value


# Programs and keys


def test_a_program_is_made_with_its_first_admin_key(store):
    issued = programs.create_program("Shop", store=store)
    assert store.programs_by_id[issued.program_id].name == "Shop"
    assert issued.role == "admin" and issued.api_key.startswith("rwk_")
    key = stored_key(store, issued)
    assert (key.program_id, key.role, key.name) == (issued.program_id, "admin", "")
    assert key.key_hash == hash_key(issued.api_key)  # the secret itself is not kept
    assert programs.create_program("Shop", store=store).api_key != issued.api_key


def test_a_program_takes_the_admin_key_it_is_given(store):
    issued = programs.create_program("Shop", api_key="rwk_chosen", store=store)
    assert issued.api_key == "rwk_chosen"
    assert stored_key(store, issued).key_hash == hash_key("rwk_chosen")


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_a_program_name_is_1_to_255_characters(name):
    with pytest.raises(InvalidArgument) as error:
        programs.create_program(name, store=Untouchable())
    assert str(error.value) == "A program name must be 1-255 characters."


def test_a_key_takes_one_of_the_roles_and_a_name(store):
    program = programs.create_program("Shop", store=store).program_id
    for role in ROLES:
        issued = programs.create_key(program, role, name="till-7 (store 12)", store=store)
        key = stored_key(store, issued)
        assert (issued.role, key.role, key.name) == (role, role, "till-7 (store 12)")
    assert len(store.keys(program)) == 1 + len(ROLES)


@pytest.mark.parametrize(
    ("role", "name", "message"),
    [
        ("owner", "", "role must be one of reader, issuer, admin."),
        ("reader", "x" * 256, "A key name must be at most 255 printable characters."),
        ("reader", "till\n7", "A key name must be at most 255 printable characters."),
    ],
)
def test_a_key_of_another_role_or_a_bad_name_is_refused_and_nothing_is_kept(
    store, role, name, message
):
    program = programs.create_program("Shop", store=store).program_id
    with pytest.raises(InvalidArgument) as error:
        programs.create_key(program, role, name=name, store=store)
    assert str(error.value) == message
    assert len(store.keys(program)) == 1


def test_a_key_of_no_program_is_refused(store):
    with pytest.raises(NotFound) as error:
        programs.create_key("prg_missing", "reader", store=store)
    assert (error.value.reason, str(error.value)) == (
        "PROGRAM_NOT_FOUND",
        "No program prg_missing.",
    )
    assert store.keys_by_id == {}


def test_keys_are_listed_in_id_order_revoked_ones_too(store):
    program = programs.create_program("Shop", store=store).program_id
    made = [programs.create_key(program, "reader", store=store) for _ in range(3)]
    programs.revoke_key(made[1].key_id, store=store)
    programs.create_program("Other", store=store)
    listed = programs.list_keys(program, store=store)
    assert [key.id for key in listed] == sorted(key.id for key in listed)
    assert {key.id for key in listed} >= {issued.key_id for issued in made}
    assert len(listed) == 4 and all(key.program_id == program for key in listed)
    with pytest.raises(NotFound) as error:
        programs.list_keys("prg_missing", store=store)
    assert error.value.reason == "PROGRAM_NOT_FOUND"


def test_programs_are_listed_in_id_order(store):
    made = {programs.create_program(f"P{n}", store=store).program_id for n in range(3)}
    assert [p.id for p in programs.list_programs(store=store)] == sorted(made)


def test_a_revoked_key_keeps_the_time_it_was_first_revoked(store, clock):
    issued = programs.create_program("Shop", store=store)
    first = programs.revoke_key(issued.key_id, store=store)
    assert first.revoked_at is not None
    assert stored_key(store, issued).revoked_at == first.revoked_at
    again = programs.revoke_key(issued.key_id, store=store)
    assert again.revoked_at == first.revoked_at
    with pytest.raises(NotFound) as error:
        programs.revoke_key("key_missing", store=store)
    assert (error.value.reason, str(error.value)) == ("KEY_NOT_FOUND", "No API key key_missing.")


# Bootstrap


def test_bootstrap_makes_the_default_program_on_an_empty_store_only(store):
    created = programs.bootstrap("rwk_first", store=store)
    assert created is not None and created.api_key == "rwk_first"
    assert store.programs_by_id[created.program_id].name == programs.DEFAULT_PROGRAM
    assert stored_key(store, created).role == "admin"
    assert programs.bootstrap("rwk_second", store=store) is None
    assert len(store.programs_by_id) == len(store.keys_by_id) == 1


def test_bootstrap_leaves_a_store_with_any_program_alone(store):
    programs.create_program("Shop", store=store)
    assert programs.bootstrap(None, store=store) is None
    assert [p.name for p in store.programs()] == ["Shop"]


def test_bootstrap_generates_a_key_when_none_is_chosen(store):
    created = programs.bootstrap(None, store=store)
    assert created is not None and created.api_key.startswith("rwk_")
    assert stored_key(store, created).key_hash == hash_key(created.api_key)


def test_the_bootstrap_notice_shows_a_generated_key_only():
    created = programs.IssuedKey("prg_1", "key_1", "rwk_secret", "admin")
    assert "rwk_secret" in programs.bootstrap_notice(created, None)
    chosen = programs.bootstrap_notice(created, "rwk_secret")
    assert "rwk_secret" not in chosen and "REWARDS_BOOTSTRAP_API_KEY" in chosen


# Authentication


def test_a_key_authenticates_as_its_program_role_and_name(store):
    program = programs.create_program("Shop", store=store).program_id
    issued = programs.create_key(program, "issuer", name="till-7", store=store)
    assert programs.authenticate(issued.api_key, store=store) == Caller(
        program_id=program, role="issuer", key_id=issued.key_id, key_name="till-7"
    )


def test_unknown_and_revoked_keys_get_the_same_answer(store):
    issued = programs.create_program("Shop", store=store)
    programs.revoke_key(issued.key_id, store=store)
    unknown, revoked = refused(store, "rwk_unknown"), refused(store, issued.api_key)
    for error in (unknown, revoked):
        assert (error.reason, str(error)) == ("INVALID_CREDENTIALS", programs.UNKNOWN_KEY_MESSAGE)


def test_a_valid_key_is_remembered_and_not_read_again_meanwhile(store, clock):
    issued = programs.create_program("Shop", store=store)
    assert programs.remembered(issued.api_key) is None
    found = programs.authenticate(issued.api_key, store=store)
    assert store.key_reads == 1
    clock.now += 0.9
    assert programs.authenticate(issued.api_key, store=store) == found
    assert programs.remembered(issued.api_key) == found
    assert store.key_reads == 1
    clock.now += 0.2  # past AUTH_CACHE_SECONDS
    assert programs.remembered(issued.api_key) is None
    assert programs.authenticate(issued.api_key, store=store) == found
    assert store.key_reads == 2


def test_a_refused_key_is_not_remembered(store):
    refused(store, "rwk_unknown")
    refused(store, "rwk_unknown")
    assert store.key_reads == 2
    assert programs.remembered("rwk_unknown") is None


def test_a_key_revoked_here_stops_working_at_once(store):
    issued = programs.create_program("Shop", store=store)
    programs.authenticate(issued.api_key, store=store)
    programs.revoke_key(issued.key_id, store=store)
    assert programs.remembered(issued.api_key) is None
    assert refused(store, issued.api_key).reason == "INVALID_CREDENTIALS"


def test_a_key_revoked_elsewhere_works_until_it_is_forgotten(store, clock):
    issued = programs.create_program("Shop", store=store)
    found = programs.authenticate(issued.api_key, store=store)
    store.revoke_elsewhere(issued.key_id)
    assert programs.authenticate(issued.api_key, store=store) == found
    clock.now += programs.AUTH_CACHE_SECONDS
    assert refused(store, issued.api_key).reason == "INVALID_CREDENTIALS"
    assert len(programs._valid_keys) == 0


def test_the_cache_lifetime_is_the_configured_one(store, clock, monkeypatch):
    monkeypatch.setattr(programs, "AUTH_CACHE_SECONDS", 0.0)
    issued = programs.create_program("Shop", store=store)
    programs.authenticate(issued.api_key, store=store)
    programs.authenticate(issued.api_key, store=store)
    assert store.key_reads == 2
    monkeypatch.setattr(programs, "AUTH_CACHE_SECONDS", 30.0)
    programs.authenticate(issued.api_key, store=store)
    clock.now += 29
    programs.authenticate(issued.api_key, store=store)
    assert store.key_reads == 3


def test_a_remembered_key_asks_the_store_nothing(store):
    issued = programs.create_program("Shop", store=store)
    found = programs.authenticate(issued.api_key, store=store)
    assert programs.authenticate(issued.api_key, store=Untouchable()) == found


def test_the_remembered_keys_are_bounded_in_bytes_and_the_oldest_go_first(store, monkeypatch):
    room = 3 * (programs.ENTRY_BYTES + len("k"))
    monkeypatch.setattr(programs, "_valid_keys", BoundedCache(room))
    shop = programs.create_program("Shop", store=store)
    issued = [
        programs.create_key(shop.program_id, "reader", name="k", store=store) for _ in range(5)
    ]
    for key in issued:
        programs.authenticate(key.api_key, store=store)
    assert programs._valid_keys.held_bytes() <= room
    assert len(programs._valid_keys) == 3
    reads = store.key_reads
    programs.authenticate(issued[-1].api_key, store=store)  # among the newest: remembered
    assert store.key_reads == reads
    assert programs.remembered(issued[0].api_key) is None  # the oldest went first
    programs.authenticate(issued[0].api_key, store=store)
    assert store.key_reads == reads + 1
