"""Participants over the database (services/ports.ParticipantStore): look-ups by identifier,
the upsert's reads and writes, pages of participants and of ledger entries, balances, and the
ledger that moves them."""

from rewards_service.domain.pagination import PageRequest
from rewards_service.store import ledger, queries
from rewards_service.store.models import LedgerEntry, Participant
from rewards_service.store.queries import Rows


class Participants(Rows):
    # The store's own functions, bound as they are: resolve() runs on every issue, and a
    # wrapper would cost it a call.
    participants_with = staticmethod(queries.participants_with)
    get_asset = staticmethod(queries.get_asset)
    asset_scale = staticmethod(queries.asset_scale)
    balance = staticmethod(ledger.balance_of)
    post = staticmethod(ledger.post)

    def participant(self, participant_id: str) -> Participant:
        return Participant.get_by_id(participant_id)

    def find_external(self, program_id: str, external_id: str) -> Participant | None:
        return (
            Participant.select()
            .where((Participant.program == program_id) & (Participant.external_id == external_id))
            .first()
        )

    def page(
        self, program_id: str, page: PageRequest, *, segment: str, email: str, mobile: str
    ) -> tuple[list[Participant], str]:
        query = Participant.select().where(Participant.program == program_id)
        if email:
            query = query.where(Participant.email == email)
        if mobile:
            query = query.where(Participant.mobile == mobile)
        scope = None
        if segment:
            # Matched by text (no index): bounded pages.
            scope, query = query, query.where(queries.mentions_segment(segment))
        return queries.keyset_page(query, Participant.id, page, scope=scope)

    def ledger_page(
        self, participant_id: str, asset_id: str, page: PageRequest
    ) -> tuple[list[LedgerEntry], str]:
        return queries.ledger_page(
            LedgerEntry, LedgerEntry.participant, participant_id, asset_id, page
        )


PARTICIPANTS = Participants()
