"""ProgramRegistry servicer: parse the request, call the use case, build the response."""

from rewards.v1 import programs_pb2, programs_pb2_grpc

from rewards_service.api import convert
from rewards_service.auth import caller
from rewards_service.domain.validation import Violations
from rewards_service.services import registries
from rewards_service.services.records import CustomFieldDef, FulfillmentStatusDef


def custom_field_out(row: CustomFieldDef) -> programs_pb2.CustomField:
    return programs_pb2.CustomField(
        id=row.id,
        key=row.key,
        type=row.type,
        required=row.required,
        created_at=convert.timestamp_out(row.created_at),
    )


def fulfillment_status_out(row: FulfillmentStatusDef) -> programs_pb2.FulfillmentStatus:
    return programs_pb2.FulfillmentStatus(
        id=row.id, status=row.status, created_at=convert.timestamp_out(row.created_at)
    )


class ProgramRegistryServicer(programs_pb2_grpc.ProgramRegistryServicer):
    def CreateCustomField(self, request, context):
        field = request.custom_field
        row = registries.create_custom_field(
            caller().program_id, field.key, field.type, field.required, request.request_id
        )
        return custom_field_out(row)

    def GetCustomField(self, request, context):
        return custom_field_out(registries.get_custom_field(caller().program_id, request.id))

    def ListCustomFields(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {})
        v.raise_if_any()
        rows, token = registries.list_custom_fields(caller().program_id, page)
        return programs_pb2.ListCustomFieldsResponse(
            custom_fields=[custom_field_out(r) for r in rows], next_page_token=token
        )

    def DeleteCustomField(self, request, context):
        return custom_field_out(registries.delete_custom_field(caller().program_id, request.id))

    def CreateFulfillmentStatus(self, request, context):
        row = registries.create_fulfillment_status(
            caller().program_id, request.fulfillment_status.status, request.request_id
        )
        return fulfillment_status_out(row)

    def GetFulfillmentStatus(self, request, context):
        row = registries.get_fulfillment_status(caller().program_id, request.id)
        return fulfillment_status_out(row)

    def ListFulfillmentStatuses(self, request, context):
        v = Violations()
        page = convert.page_in(v, request, {})
        v.raise_if_any()
        rows, token = registries.list_fulfillment_statuses(caller().program_id, page)
        return programs_pb2.ListFulfillmentStatusesResponse(
            fulfillment_statuses=[fulfillment_status_out(r) for r in rows], next_page_token=token
        )

    def DeleteFulfillmentStatus(self, request, context):
        row = registries.delete_fulfillment_status(caller().program_id, request.id)
        return fulfillment_status_out(row)
