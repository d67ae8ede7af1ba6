"""Servicers on their own, through grpc_testing: no network and no interceptor, the store real.

grpc_testing cannot carry the interceptor (keys, errors as rich statuses), so these cover
happy paths only; errors, auth and the contract are tested against real servers."""

import grpc
import grpc_testing
import pytest
from rewards.v1 import catalog_pb2, participants_pb2

from rewards_service.api.catalog import RewardCatalogServicer
from rewards_service.api.participants import ParticipantsServicer
from rewards_service.auth import Caller, current_caller
from rewards_service.services.records import session
from tests.conftest import new_program

CATALOG = catalog_pb2.DESCRIPTOR.services_by_name["RewardCatalog"]
PARTICIPANTS = participants_pb2.DESCRIPTOR.services_by_name["Participants"]


class AsCaller:
    """What the interceptor does around a servicer's method on a real server: it runs as the
    authenticated caller, in one store session."""

    def __init__(self, servicer: object, found: Caller) -> None:
        self._servicer = servicer
        self._found = found

    def __getattr__(self, name: str):
        method = getattr(self._servicer, name)

        def call(request, context):
            token = current_caller.set(self._found)
            try:
                with session():
                    return method(request, context)
            finally:
                current_caller.reset(token)

        return call


@pytest.fixture
def server(store):
    issued = new_program("servicers")
    found = Caller(program_id=issued.program_id, role="admin", key_id=issued.key_id)
    return grpc_testing.server_from_dictionary(
        {
            CATALOG: AsCaller(RewardCatalogServicer(), found),
            PARTICIPANTS: AsCaller(ParticipantsServicer(), found),
        },
        grpc_testing.strict_real_time(),
    )


def call(server, service, method: str, request):
    rpc = server.invoke_unary_unary(service.methods_by_name[method], (), request, None)
    response, _, code, details = rpc.termination()
    assert code == grpc.StatusCode.OK, details
    return response


def test_an_asset_is_created_read_and_listed(server):
    asset = catalog_pb2.Asset(code="MILES", name="Miles", scale=2)
    created = call(server, CATALOG, "CreateAsset", catalog_pb2.CreateAssetRequest(asset=asset))
    assert created.id.startswith("ast_") and created.scale == 2
    got = call(server, CATALOG, "GetAsset", catalog_pb2.GetAssetRequest(id=created.id))
    assert got == created
    listed = call(server, CATALOG, "ListAssets", catalog_pb2.ListAssetsRequest())
    assert [a.id for a in listed.assets] == [created.id]


def test_a_participant_is_upserted_funded_and_its_balance_read(server):
    asset = call(
        server,
        CATALOG,
        "CreateAsset",
        catalog_pb2.CreateAssetRequest(asset=catalog_pb2.Asset(code="PTS", name="P", scale=0)),
    )
    person = call(
        server,
        PARTICIPANTS,
        "UpsertParticipant",
        participants_pb2.UpsertParticipantRequest(
            participant=participants_pb2.Participant(external_id="ada")
        ),
    )
    ref = {"participant": {"id": person.id}, "asset_id": asset.id}
    call(
        server,
        PARTICIPANTS,
        "AdjustBalance",
        participants_pb2.AdjustBalanceRequest(**ref, delta="25", request_id="fund-ada"),
    )
    balance = call(server, PARTICIPANTS, "GetBalance", participants_pb2.GetBalanceRequest(**ref))
    assert (balance.available, balance.lifetime_earned) == ("25", "25")
