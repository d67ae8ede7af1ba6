"""Peewee models: one table each. Money is integer minor units at the asset's scale."""

import peewee

from rewards_service.store.db import database
from rewards_service.store.fields import ExpiryField, JSONField, TimestampField, utcnow


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Program(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    name = peewee.CharField(max_length=255)
    created_at = TimestampField(default=utcnow)
    # Bumped by every change of the program's registries (custom fields, fulfillment
    # statuses): 0 while it defines none. Issues read it to know whether their cached
    # registry is current, whichever replica changed it.
    registry_version = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])


class ApiKey(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, backref="api_keys", on_delete="CASCADE")
    role = peewee.CharField(max_length=16)
    # Shown on the issuances the key makes (Capillary's till username); may be empty.
    name = peewee.CharField(max_length=255, default="", constraints=[peewee.SQL("DEFAULT ''")])
    # SHA-256 of the secret; the secret itself is shown once and never stored.
    key_hash = peewee.CharField(max_length=64, unique=True)
    created_at = TimestampField(default=utcnow)
    revoked_at = TimestampField(null=True)


class Asset(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE")
    code = peewee.CharField(max_length=32)
    name = peewee.CharField(max_length=255)
    scale = peewee.IntegerField()
    request_id = peewee.CharField(max_length=128, null=True)
    # Digest of the create request; a retry with the same request_id must match it.
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        indexes = (
            (("program", "code"), True),
            (("program", "request_id"), True),
        )


class CodePool(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE")
    name = peewee.CharField(max_length=255)
    description = peewee.TextField(default="")
    total_count = peewee.BigIntegerField(default=0)
    available_count = peewee.BigIntegerField(default=0)
    issued_count = peewee.BigIntegerField(default=0)
    request_id = peewee.CharField(max_length=128, null=True)
    # Digest of the create request; a retry with the same request_id must match it.
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)
    # A CODE_POOL_LOW event when available_count falls below it; 0: none.
    low_stock_threshold = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    # Not a column: codes of available_count past their expiry, set by the reads that show it.
    expired_count = 0

    class Meta:
        indexes = ((("program", "request_id"), True),)


class Code(BaseModel):
    STATUS_AVAILABLE = "available"
    STATUS_ISSUED = "issued"
    STATUS_VOIDED = "voided"

    id = peewee.BigAutoField()
    # Not indexed alone: both indexes below lead with pool_id.
    pool = peewee.ForeignKeyField(CodePool, on_delete="CASCADE", index=False)
    code = peewee.CharField(max_length=128)
    status = peewee.CharField(max_length=16, default=STATUS_AVAILABLE)
    issuance_id = peewee.CharField(max_length=40, null=True, index=True)
    # Never drawn from this moment on; None (stored as the largest value) is never.
    expires_at = ExpiryField(constraints=[peewee.SQL(f"DEFAULT {ExpiryField.NEVER}")])

    class Meta:
        indexes = (
            (("pool", "code"), True),
            # The draw: the available code of a pool expiring first, past the expired ones.
            (("pool", "status", "expires_at", "id"), False),
        )


class Reward(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    # Not indexed alone: both indexes below lead with program_id.
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    name = peewee.CharField(max_length=255)
    description = peewee.TextField(default="")
    category = peewee.CharField(max_length=100, default="")
    type = peewee.IntegerField()
    status = peewee.IntegerField()
    # The type's config as a dict of its proto fields (e.g. {"asset_id": ..., "amount": ...}).
    config = JSONField()
    # Denormalised from config so AddCodes can find the rewards a pool feeds.
    code_pool_id = peewee.CharField(max_length=40, null=True, index=True)
    redemption_type = peewee.IntegerField()
    cost_asset_id = peewee.CharField(max_length=40, null=True)
    unit_cost = peewee.CharField(max_length=64, null=True)
    max_total = peewee.BigIntegerField(null=True)
    max_per_participant = peewee.BigIntegerField(null=True)
    limits = JSONField(default=list)
    available_from = TimestampField(null=True)
    available_until = TimestampField(null=True)
    segments = JSONField(default=list)
    metadata = JSONField(default=dict)
    redeemed_count = peewee.BigIntegerField(default=0)
    # Bumped on every change; the etag is derived from it.
    version = peewee.IntegerField(default=1)
    request_id = peewee.CharField(max_length=128, null=True)
    # Digest of the create request; a retry with the same request_id must match it.
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)
    updated_at = TimestampField(default=utcnow)
    # Pricing beside unit_cost (domain.pricing): a conversion ratio, the rounding of costs,
    # several payment options (a list of PaymentOption dicts) and the amount's unit name.
    # Columns added after the first release default in the database too (_LATER), so a server
    # of the release before, which writes rows without them, keeps working during an upgrade.
    conversion_ratio = peewee.CharField(max_length=64, null=True)
    cost_rounding = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    payment_options = JSONField(default=list, constraints=[peewee.SQL("DEFAULT '[]'")])
    redemption_unit = peewee.CharField(
        max_length=32, default="", constraints=[peewee.SQL("DEFAULT ''")]
    )

    class Meta:
        indexes = (
            (("program", "request_id"), True),
            (("program", "id"), False),
        )


class Participant(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=40)
    # Not indexed alone: every index below leads with program_id.
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    external_id = peewee.CharField(max_length=128)
    email = peewee.CharField(max_length=320, null=True)
    mobile = peewee.CharField(max_length=32, null=True)
    segments = JSONField(default=list)
    created_at = TimestampField(default=utcnow)
    updated_at = TimestampField(default=utcnow)

    class Meta:
        indexes = (
            (("program", "external_id"), True),
            (("program", "email"), False),
            (("program", "mobile"), False),
        )


class Balance(BaseModel):
    id = peewee.BigAutoField()
    # Not indexed alone: the unique (participant_id, asset_id) index leads with it.
    participant = peewee.ForeignKeyField(Participant, on_delete="CASCADE", index=False)
    asset = peewee.ForeignKeyField(Asset, on_delete="CASCADE")
    available = peewee.BigIntegerField(default=0)
    lifetime_earned = peewee.BigIntegerField(default=0)
    lifetime_spent = peewee.BigIntegerField(default=0)
    # The account's last ledger entry's seq: bumped by the UPDATE that moves the balance, so
    # entries are numbered in commit order whichever process writes them.
    seq = peewee.BigIntegerField(default=0)

    class Meta:
        indexes = ((("participant", "asset"), True),)
        constraints = [peewee.Check("available >= 0")]


class Issuance(BaseModel):
    # Every index is one more page write per issue. The foreign keys are not indexed alone:
    # an index below leads with each, serving its lookups and the ON DELETE CASCADE scans.
    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    reward = peewee.ForeignKeyField(Reward, null=True, on_delete="CASCADE", index=False)
    participant = peewee.ForeignKeyField(Participant, on_delete="CASCADE", index=False)
    type = peewee.IntegerField()
    status = peewee.IntegerField()
    quantity = peewee.BigIntegerField(default=1)
    amount = peewee.CharField(max_length=64, default="")
    cost_asset_id = peewee.CharField(max_length=40, null=True)
    cost_amount = peewee.BigIntegerField(default=0)
    credit_asset_id = peewee.CharField(max_length=40, null=True)
    credit_amount = peewee.BigIntegerField(default=0)
    coupon_code = peewee.CharField(max_length=128, default="")
    reward_snapshot = JSONField(default=dict)
    action_code = peewee.CharField(max_length=64, default="")
    request_id = peewee.CharField(max_length=128, null=True)
    # Digest of the attributes that define the call; a replay must match it.
    request_hash = peewee.CharField(max_length=64, default="")
    transaction_number = peewee.CharField(max_length=128, default="")
    notes = peewee.TextField(default="")
    metadata = JSONField(default=dict)
    custom_fields = JSONField(default=dict)
    owner_type = peewee.IntegerField(default=0)
    owner_id = peewee.CharField(max_length=128, default="")
    fulfillment_status = peewee.CharField(max_length=64, default="")
    fulfillment_history = JSONField(default=list)
    event_time = TimestampField(null=True)
    issued_at = TimestampField(default=utcnow)
    claimed_at = TimestampField(null=True)
    revoked_at = TimestampField(null=True)
    revoke_reason = peewee.TextField(default="")
    # How it was paid (RedemptionDetails by proto field name, tender included); {} when free.
    # These columns default in the database too: see Reward.conversion_ratio.
    redemption = JSONField(default=dict, constraints=[peewee.SQL("DEFAULT '{}'")])
    # Issued by an admin past the window, segments and rolling limits.
    manual = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])
    issuer_key_id = peewee.CharField(max_length=40, null=True)
    issuer_key_name = peewee.CharField(
        max_length=255, default="", constraints=[peewee.SQL("DEFAULT ''")]
    )
    # NULL when not given, so the partial index below costs nothing for those.
    source_event_id = peewee.CharField(max_length=128, null=True)
    # The drawn code's expiry (UNIQUE_COUPON); None when it has none.
    code_expires_at = TimestampField(null=True)
    # The group whose balance paid the cost (pay_from GROUP); a revoke refunds it there.
    cost_group_id = peewee.CharField(max_length=40, null=True)

    class Meta:
        indexes = (
            (("program", "id"), False),
            # Per-participant caps and rolling windows.
            (("reward", "participant", "issued_at"), False),
            (("reward", "issued_at"), False),
            (("participant", "id"), False),
        )


class LedgerEntry(BaseModel):
    # Every index is one more page write per entry, so the foreign keys are not indexed alone.
    # participant_id leads the indexes below. Nothing reads entries by program_id or asset_id,
    # and no call deletes a program or an asset, so no ON DELETE CASCADE has to find entries
    # by them: a delete of either would need an index on that column first (on PostgreSQL it
    # would scan the table).
    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    participant = peewee.ForeignKeyField(Participant, on_delete="CASCADE", index=False)
    asset = peewee.ForeignKeyField(Asset, on_delete="CASCADE", index=False)
    delta = peewee.BigIntegerField()
    balance_after = peewee.BigIntegerField()
    # 1, 2, 3... per account (participant and asset), in commit order: entry n + 1 moves the
    # balance from entry n's balance_after.
    seq = peewee.BigIntegerField(default=0)
    kind = peewee.IntegerField()
    issuance_id = peewee.CharField(max_length=40, null=True, index=True)
    reason = peewee.TextField(default="")
    # Set on AdjustBalance entries; unique per program so a retry replays.
    request_id = peewee.CharField(max_length=128, null=True)
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        indexes = (
            # An account's entries in order; unique, so a chain can never fork.
            (("participant", "asset", "seq"), True),
            (("participant", "id"), False),
        )


class ParticipantGroup(BaseModel):
    """A household or company: members pool a balance per asset, with its own ledger."""

    id = peewee.CharField(primary_key=True, max_length=40)
    # Not indexed alone: both indexes below lead with program_id.
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    name = peewee.CharField(max_length=255)
    metadata = JSONField(default=dict)
    request_id = peewee.CharField(max_length=128, null=True)
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        indexes = (
            (("program", "request_id"), True),
            (("program", "id"), False),
        )


class GroupMember(BaseModel):
    # The primary key: a participant (of one program) is in at most one group. Read as its id
    # (lazy_load off), which is what member lists page by.
    participant = peewee.ForeignKeyField(
        Participant, primary_key=True, on_delete="CASCADE", lazy_load=False
    )
    # Not indexed alone: the index below leads with it.
    group = peewee.ForeignKeyField(ParticipantGroup, on_delete="CASCADE", index=False)
    joined_at = TimestampField(default=utcnow)

    class Meta:
        indexes = ((("group", "participant"), False),)


class GroupBalance(BaseModel):
    """A group's holding of one asset: a Balance whose owner is the group (store/ledger.py
    moves both)."""

    id = peewee.BigAutoField()
    group = peewee.ForeignKeyField(ParticipantGroup, on_delete="CASCADE", index=False)
    asset = peewee.ForeignKeyField(Asset, on_delete="CASCADE")
    available = peewee.BigIntegerField(default=0)
    lifetime_earned = peewee.BigIntegerField(default=0)
    lifetime_spent = peewee.BigIntegerField(default=0)
    seq = peewee.BigIntegerField(default=0)

    class Meta:
        indexes = ((("group", "asset"), True),)
        constraints = [peewee.Check("available >= 0")]


class GroupLedgerEntry(BaseModel):
    """A LedgerEntry of a group's balance; participant_id is the member who spent, if any."""

    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    group = peewee.ForeignKeyField(ParticipantGroup, on_delete="CASCADE", index=False)
    asset = peewee.ForeignKeyField(Asset, on_delete="CASCADE", index=False)
    participant_id = peewee.CharField(max_length=40, null=True)
    delta = peewee.BigIntegerField()
    balance_after = peewee.BigIntegerField()
    seq = peewee.BigIntegerField(default=0)
    kind = peewee.IntegerField()
    issuance_id = peewee.CharField(max_length=40, null=True, index=True)
    reason = peewee.TextField(default="")
    request_id = peewee.CharField(max_length=128, null=True)
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        indexes = (
            (("group", "asset", "seq"), True),
            (("group", "id"), False),
        )


class ServerSecret(BaseModel):
    """Secrets every server process sharing the database uses alike (e.g. to sign page
    tokens), made once by a migration."""

    name = peewee.CharField(primary_key=True, max_length=40)
    value = peewee.CharField(max_length=128)


def _unique_request_id(model: type[BaseModel]) -> peewee.ModelIndex:
    """request_id is unique per program (AIP-155). Most rows have none (every issue's ledger
    entries, calls sent without one): leaving NULLs out spares a page write per such row.
    Lookups say `request_id = ?`, which implies NOT NULL, so SQLite and PostgreSQL still use
    the index for them."""
    return model.index(
        model.program,
        model.request_id,
        unique=True,
        where=model.request_id.is_null(False),
        name=f"{model._meta.table_name}_program_id_request_id_not_null",
    )


# Across every issuing call.
Issuance.add_index(_unique_request_id(Issuance))
# AdjustBalance entries.
LedgerEntry.add_index(_unique_request_id(LedgerEntry))
# ListIssuances by source_event_id; issues without one write no index entry.
Issuance.add_index(
    Issuance.index(
        Issuance.program,
        Issuance.source_event_id,
        where=Issuance.source_event_id.is_null(False),
        name="issuance_program_id_source_event_id_not_null",
    )
)


class Event(BaseModel):
    """The outbox: one row per state change, written in the transaction that made it.
    Positions are per program, assigned in commit order (store/outbox.py)."""

    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    position = peewee.BigIntegerField()
    type = peewee.IntegerField()
    # The changed row's columns as stored (JSON), turned into its message when read.
    payload = peewee.TextField()
    created_at = TimestampField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("program", "position")


class EventSequence(BaseModel):
    """A program's last event position: the sequencer row its writers take in turn."""

    program = peewee.ForeignKeyField(Program, primary_key=True, on_delete="CASCADE")
    last = peewee.BigIntegerField(default=0)


class EventConsumer(BaseModel):
    """A named consumer's acknowledged position; retention keeps every event after it."""

    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    name = peewee.CharField(max_length=128)
    position = peewee.BigIntegerField(default=0)
    updated_at = TimestampField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("program", "name")


# AdjustGroupBalance entries.
GroupLedgerEntry.add_index(_unique_request_id(GroupLedgerEntry))


class CustomFieldDef(BaseModel):
    """A custom field a program's issuances may carry (rewards.v1.CustomField)."""

    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    key = peewee.CharField(max_length=64)
    type = peewee.IntegerField()
    required = peewee.BooleanField(default=False)
    request_id = peewee.CharField(max_length=128, null=True)
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        table_name = "custom_field"
        indexes = (
            (("program", "key"), True),
            (("program", "request_id"), True),
        )


class FulfillmentStatusDef(BaseModel):
    """A fulfillment status a program's issuances may go through."""

    id = peewee.CharField(primary_key=True, max_length=40)
    program = peewee.ForeignKeyField(Program, on_delete="CASCADE", index=False)
    status = peewee.CharField(max_length=64)
    request_id = peewee.CharField(max_length=128, null=True)
    request_hash = peewee.CharField(max_length=64, default="")
    created_at = TimestampField(default=utcnow)

    class Meta:
        table_name = "fulfillment_status"
        indexes = (
            (("program", "status"), True),
            (("program", "request_id"), True),
        )


# Tables migration 9 adds (step 1 makes them on a new database).
MIGRATION_9_MODELS = [
    ParticipantGroup,
    GroupMember,
    GroupBalance,
    GroupLedgerEntry,
    CustomFieldDef,
    FulfillmentStatusDef,
]


ALL_MODELS = [
    Program,
    ApiKey,
    Asset,
    CodePool,
    Code,
    Reward,
    Participant,
    Balance,
    Issuance,
    LedgerEntry,
    ServerSecret,
    Event,
    EventSequence,
    EventConsumer,
    *MIGRATION_9_MODELS,
]
