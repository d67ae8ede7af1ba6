"""RewardIssuance servicer: parse the request, call the use case, build the response."""

from google.rpc import error_details_pb2
from rewards.v1 import issuance_pb2, issuance_pb2_grpc

from rewards_service import metrics
from rewards_service.api import convert
from rewards_service.api.errors import to_status_proto
from rewards_service.auth import caller
from rewards_service.domain.errors import InvalidArgument, PermissionDenied, RewardsError
from rewards_service.domain.issuance import GrantRequest
from rewards_service.domain.validation import Violations
from rewards_service.services import issuance

# The largest message the server receives or sends (server.py sets gRPC's limits with it).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# A batch's answer: the send limit, less room for the response's own framing.
MAX_ANSWER_BYTES = MAX_MESSAGE_BYTES - 64


def _batch_result(outcome) -> issuance_pb2.BatchIssueRewardsResult:
    if isinstance(outcome, RewardsError):
        return issuance_pb2.BatchIssueRewardsResult(error=to_status_proto(outcome))
    found, replay = outcome
    return issuance_pb2.BatchIssueRewardsResult(
        issuance=convert.issuance_out(found), idempotent_replay=replay
    )


def _size_in_batch(result: issuance_pb2.BatchIssueRewardsResult) -> int:
    """Its bytes in the response: a one-byte tag, the length as a varint, the message."""
    size = result.ByteSize()
    return 1 + (size.bit_length() + 6) // 7 + size


def _issue_answer(outcome) -> issuance_pb2.IssueRewardResponse:
    found, replay = outcome
    return issuance_pb2.IssueRewardResponse(
        issuance=convert.issuance_out(found), idempotent_replay=replay
    )


def _observe_batch(results: list[issuance_pb2.BatchIssueRewardsResult]) -> None:
    """Each item's outcome, read back from its result (the reason from its ErrorInfo)."""
    if not metrics.enabled():
        return
    for result in results:
        if result.HasField("issuance"):
            metrics.issued(result.issuance.type, result.idempotent_replay)
            continue
        info = error_details_pb2.ErrorInfo()
        if any(detail.Unpack(info) for detail in result.error.details):
            metrics.issue_failed(info.reason)


class RewardIssuanceServicer(issuance_pb2_grpc.RewardIssuanceServicer):
    async def IssueReward(self, request, context):
        # On the event loop: the whole issue is one unit on the store's writer, which also
        # builds the answer, so no thread waits for the commit.
        try:
            v = Violations()
            issue = convert.issue_request_in(v, request)
            v.raise_if_any()
            program_id = caller().program_id
            answer = await issuance.issue_reward_async(program_id, issue, _issue_answer)
        except RewardsError as error:
            metrics.issue_failed(error.reason)
            raise
        metrics.issued(answer.issuance.type, answer.idempotent_replay)
        return answer

    def BatchIssueRewards(self, request, context):
        items = []
        for item in request.requests:
            # Each item stands alone: a malformed one fails by itself, like any other item.
            v = Violations()
            try:
                convert.refuse_nul(item)
                parsed = convert.issue_request_in(v, item)
            except (InvalidArgument, PermissionDenied) as error:
                items.append(error)
                continue
            items.append(v.error() if v else parsed)
        program_id = caller().program_id
        results = issuance.batch_issue_rewards(
            program_id,
            items,
            context.is_active,
            render=_batch_result,
            size=_size_in_batch,
            max_bytes=MAX_ANSWER_BYTES,
        )
        _observe_batch(results)
        return issuance_pb2.BatchIssueRewardsResponse(results=results)

    def GrantCustomReward(self, request, context):
        who = caller()
        grant = GrantRequest(
            participant=convert.ref_in(request),
            amount=request.amount,
            action_code=request.action_code,
            client_reference=request.client_reference,
            notes=request.notes,
            metadata=dict(request.metadata),
            issuer_key_id=who.key_id,
            issuer_key_name=who.key_name,
        )
        program_id = who.program_id
        try:
            found, replay = issuance.grant_custom_reward(program_id, grant)
        except RewardsError as error:
            metrics.issue_failed(error.reason)
            raise
        metrics.issued(found.row.type, replay)
        return issuance_pb2.GrantCustomRewardResponse(
            issuance=convert.issuance_out(found),
            idempotent_replay=replay,
        )

    def GetIssuance(self, request, context):
        program_id = caller().program_id
        row = issuance.get_issuance(program_id, request.id)
        return convert.issuance_out(row)

    def ListIssuances(self, request, context):
        v = Violations()
        ref = convert.ref_in(request)
        created_after = convert.timestamp_in(v, "created_after", request, "created_after")
        created_before = convert.timestamp_in(v, "created_before", request, "created_before")
        filters = {
            "participant": str(ref),
            "reward_id": request.reward_id,
            "status": request.status,
            "type": request.type,
            "created_after": str(created_after),
            "created_before": str(created_before),
            "issuer_key_id": request.issuer_key_id,
            "source_event_id": request.source_event_id,
            "action_code": request.action_code,
        }
        page = convert.page_in(v, request, filters)
        v.raise_if_any()
        program_id = caller().program_id
        rows, token = issuance.list_issuances(
            program_id,
            page,
            participant=ref,
            reward_id=request.reward_id,
            status=request.status,
            reward_type=request.type,
            created_after=created_after,
            created_before=created_before,
            issuer_key_id=request.issuer_key_id,
            source_event_id=request.source_event_id,
            action_code=request.action_code,
        )
        return issuance_pb2.ListIssuancesResponse(
            issuances=[convert.issuance_out(r) for r in rows], next_page_token=token
        )

    def ClaimIssuance(self, request, context):
        program_id = caller().program_id
        row = issuance.claim_issuance(program_id, request.id)
        return convert.issuance_out(row)

    def RevokeIssuance(self, request, context):
        program_id = caller().program_id
        row = issuance.revoke_issuance(program_id, request.id, request.reason)
        return convert.issuance_out(row)

    def UpdateFulfillment(self, request, context):
        program_id = caller().program_id
        row = issuance.update_fulfillment(program_id, request.id, request.status, request.note)
        return convert.issuance_out(row)
