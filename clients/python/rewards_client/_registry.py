"""ProgramRegistry methods: a program's custom fields and fulfillment statuses."""

from __future__ import annotations

from rewards.v1 import programs_pb2

from rewards_client._call import Call, Pages
from rewards_client.messages import new_request_id


def create_custom_field(
    key: str,
    type: int,
    *,
    required: bool = False,
    request_id: str | None = None,
    timeout: float | None = None,
) -> Call[programs_pb2.CustomField]:
    """Define a custom field (admin only): IssueReward then refuses undefined keys,
    ill-typed values and missing required fields. `type` is a CustomFieldType. A
    request_id is made when none is given, once per call."""
    request = programs_pb2.CreateCustomFieldRequest(
        custom_field=programs_pb2.CustomField(key=key, type=type, required=required),  # type: ignore[arg-type]
        request_id=request_id or new_request_id(),
    )
    return Call(request, programs_pb2.CustomField, timeout)


def get_custom_field(id: str, *, timeout: float | None = None) -> Call[programs_pb2.CustomField]:
    """One custom field by id."""
    return Call(programs_pb2.GetCustomFieldRequest(id=id), programs_pb2.CustomField, timeout)


def list_custom_fields(
    *, page_size: int = 0, page_token: str = "", timeout: float | None = None
) -> Call[programs_pb2.ListCustomFieldsResponse]:
    """One page of the program's custom fields."""
    request = programs_pb2.ListCustomFieldsRequest(page_size=page_size, page_token=page_token)
    return Call(request, programs_pb2.ListCustomFieldsResponse, timeout)


def iter_custom_fields(
    *, page_size: int = 0, timeout: float | None = None
) -> Pages[programs_pb2.ListCustomFieldsResponse, programs_pb2.CustomField]:
    """Every custom field of the program, page by page."""
    return Pages(
        lambda token: list_custom_fields(page_size=page_size, page_token=token, timeout=timeout),
        lambda page: page.custom_fields,
    )


def delete_custom_field(id: str, *, timeout: float | None = None) -> Call[programs_pb2.CustomField]:
    """Delete a custom field (admin only); returns it."""
    request = programs_pb2.DeleteCustomFieldRequest(id=id)
    return Call(request, programs_pb2.CustomField, timeout)


def create_fulfillment_status(
    status: str, *, request_id: str | None = None, timeout: float | None = None
) -> Call[programs_pb2.FulfillmentStatus]:
    """Define a fulfillment status (admin only): UpdateFulfillment then refuses others.
    A request_id is made when none is given, once per call."""
    request = programs_pb2.CreateFulfillmentStatusRequest(
        fulfillment_status=programs_pb2.FulfillmentStatus(status=status),
        request_id=request_id or new_request_id(),
    )
    return Call(request, programs_pb2.FulfillmentStatus, timeout)


def get_fulfillment_status(
    id: str, *, timeout: float | None = None
) -> Call[programs_pb2.FulfillmentStatus]:
    """One fulfillment status by id."""
    request = programs_pb2.GetFulfillmentStatusRequest(id=id)
    return Call(request, programs_pb2.FulfillmentStatus, timeout)


def list_fulfillment_statuses(
    *, page_size: int = 0, page_token: str = "", timeout: float | None = None
) -> Call[programs_pb2.ListFulfillmentStatusesResponse]:
    """One page of the program's fulfillment statuses."""
    request = programs_pb2.ListFulfillmentStatusesRequest(
        page_size=page_size, page_token=page_token
    )
    return Call(request, programs_pb2.ListFulfillmentStatusesResponse, timeout)


def iter_fulfillment_statuses(
    *, page_size: int = 0, timeout: float | None = None
) -> Pages[programs_pb2.ListFulfillmentStatusesResponse, programs_pb2.FulfillmentStatus]:
    """Every fulfillment status of the program, page by page."""
    return Pages(
        lambda token: list_fulfillment_statuses(
            page_size=page_size, page_token=token, timeout=timeout
        ),
        lambda page: page.fulfillment_statuses,
    )


def delete_fulfillment_status(
    id: str, *, timeout: float | None = None
) -> Call[programs_pb2.FulfillmentStatus]:
    """Delete a fulfillment status (admin only); returns it."""
    request = programs_pb2.DeleteFulfillmentStatusRequest(id=id)
    return Call(request, programs_pb2.FulfillmentStatus, timeout)
