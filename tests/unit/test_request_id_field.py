"""The access log names each call's request_id, whichever field carries it."""

from rewards.v1 import catalog_pb2, issuance_pb2, participants_pb2

from rewards_service.api.interceptor import _request_id


def test_the_request_id_is_read_from_the_field_that_carries_it():
    assert _request_id(issuance_pb2.IssueRewardRequest(request_id="r-1")) == "r-1"
    assert _request_id(participants_pb2.AdjustBalanceRequest(request_id="r-2")) == "r-2"
    assert _request_id(issuance_pb2.GrantCustomRewardRequest(client_reference="c-1")) == "c-1"
    assert _request_id(catalog_pb2.CreateRewardRequest(request_id="r-3")) == "r-3"


def test_calls_without_one_have_none():
    assert _request_id(catalog_pb2.GetRewardRequest(id="rew_1")) == ""
    assert _request_id(issuance_pb2.IssueRewardRequest()) == ""
