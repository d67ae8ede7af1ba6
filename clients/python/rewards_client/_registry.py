"""ProgramRegistry methods: a program's custom fields and fulfillment statuses."""

from __future__ import annotations

from collections.abc import Iterator

from rewards.v1 import programs_pb2

from rewards_client._transport import Transport, walk
from rewards_client.messages import new_request_id


class RegistryMethods(Transport):
    def create_custom_field(
        self,
        key: str,
        type: int,
        *,
        required: bool = False,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> programs_pb2.CustomField:
        """Define a custom field (admin only): IssueReward then refuses undefined keys,
        ill-typed values and missing required fields. `type` is a CustomFieldType. A
        request_id is made when none is given, once per call."""
        request = programs_pb2.CreateCustomFieldRequest(
            custom_field=programs_pb2.CustomField(key=key, type=type, required=required),  # type: ignore[arg-type]
            request_id=request_id or new_request_id(),
        )
        return self._invoke(self._registry.CreateCustomField, request, timeout=timeout)

    def list_custom_fields(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> programs_pb2.ListCustomFieldsResponse:
        """One page of the program's custom fields."""
        request = programs_pb2.ListCustomFieldsRequest(page_size=page_size, page_token=page_token)
        return self._invoke(self._registry.ListCustomFields, request, timeout=timeout)

    def iter_custom_fields(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[programs_pb2.CustomField]:
        """Every custom field of the program, page by page."""
        return walk(
            lambda token: self.list_custom_fields(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.custom_fields,
        )

    def delete_custom_field(
        self, id: str, *, timeout: float | None = None
    ) -> programs_pb2.CustomField:
        """Delete a custom field (admin only); returns it."""
        request = programs_pb2.DeleteCustomFieldRequest(id=id)
        return self._invoke(self._registry.DeleteCustomField, request, timeout=timeout)

    def create_fulfillment_status(
        self, status: str, *, request_id: str | None = None, timeout: float | None = None
    ) -> programs_pb2.FulfillmentStatus:
        """Define a fulfillment status (admin only): UpdateFulfillment then refuses others.
        A request_id is made when none is given, once per call."""
        request = programs_pb2.CreateFulfillmentStatusRequest(
            fulfillment_status=programs_pb2.FulfillmentStatus(status=status),
            request_id=request_id or new_request_id(),
        )
        return self._invoke(self._registry.CreateFulfillmentStatus, request, timeout=timeout)

    def list_fulfillment_statuses(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> programs_pb2.ListFulfillmentStatusesResponse:
        """One page of the program's fulfillment statuses."""
        request = programs_pb2.ListFulfillmentStatusesRequest(
            page_size=page_size, page_token=page_token
        )
        return self._invoke(self._registry.ListFulfillmentStatuses, request, timeout=timeout)

    def iter_fulfillment_statuses(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[programs_pb2.FulfillmentStatus]:
        """Every fulfillment status of the program, page by page."""
        return walk(
            lambda token: self.list_fulfillment_statuses(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.fulfillment_statuses,
        )

    def delete_fulfillment_status(
        self, id: str, *, timeout: float | None = None
    ) -> programs_pb2.FulfillmentStatus:
        """Delete a fulfillment status (admin only); returns it."""
        request = programs_pb2.DeleteFulfillmentStatusRequest(id=id)
        return self._invoke(self._registry.DeleteFulfillmentStatus, request, timeout=timeout)
