"""Participants servicer: parse the request, call the use case, build the response."""

from rewards.v1 import participants_pb2, participants_pb2_grpc

from rewards_service.api import convert
from rewards_service.auth import caller
from rewards_service.domain.participants import ParticipantSpec, check_filters, check_ref
from rewards_service.domain.validation import Violations
from rewards_service.services import participants


def _required_ref(v: Violations, request):
    ref = convert.ref_in(request)
    check_ref(v, "participant", ref)
    return ref


class ParticipantsServicer(participants_pb2_grpc.ParticipantsServicer):
    def UpsertParticipant(self, request, context):
        p = request.participant
        spec = ParticipantSpec(
            external_id=p.external_id,
            email=p.email,
            mobile=p.mobile,
            segments=convert.segments_in(p.segments),
        )
        row = participants.upsert_participant(
            caller().program_id, spec, set(request.update_mask.paths)
        )
        return convert.participant_out(row)

    def GetParticipant(self, request, context):
        row = participants.get_participant(caller().program_id, request.id, convert.ref_in(request))
        return convert.participant_out(row)

    def ListParticipants(self, request, context):
        v = Violations()
        filters = check_filters(
            v,
            segment=request.segment,
            partition=request.partition,
            email=request.email,
            mobile=request.mobile,
        )
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        rows, token = participants.list_participants(caller().program_id, page, **filters)
        return participants_pb2.ListParticipantsResponse(
            participants=[convert.participant_out(r) for r in rows], next_page_token=token
        )

    def GetBalance(self, request, context):
        v = Violations()
        ref = _required_ref(v, request)
        v.check(bool(request.asset_id), "asset_id", "is required")
        v.raise_if_any()
        view = participants.get_balance(caller().program_id, ref, request.asset_id)
        return convert.balance_out(view)

    def ListLedgerEntries(self, request, context):
        v = Violations()
        ref = _required_ref(v, request)
        filters = {"participant": str(ref), "asset_id": request.asset_id}
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        program_id = caller().program_id
        rows, token = participants.list_ledger_entries(program_id, ref, request.asset_id, page)
        return participants_pb2.ListLedgerEntriesResponse(
            entries=[convert.ledger_entry_out(r) for r in rows],
            next_page_token=token,
        )

    def AdjustBalance(self, request, context):
        entry, view, replay = participants.adjust_balance(
            caller().program_id,
            convert.ref_in(request),
            request.asset_id,
            request.delta,
            request.reason,
            request.request_id,
        )
        return participants_pb2.AdjustBalanceResponse(
            entry=convert.ledger_entry_out(entry),
            balance=convert.balance_out(view),
            idempotent_replay=replay,
        )
