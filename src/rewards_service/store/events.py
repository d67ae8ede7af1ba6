"""The event feed over the database (services/ports.EventStore): the outbox's reads, named
consumers' positions, and retention."""

from rewards_service.store import outbox, queries
from rewards_service.store.queries import Rows


class Events(Rows):
    # The outbox's own functions, bound as they are: a watching stream reads through them
    # on every wake, and a wrapper would cost each read a call.
    last_position = staticmethod(outbox.last_position)
    read_events = staticmethod(outbox.read_events)
    consumer_position = staticmethod(outbox.consumer_position)
    consumer_count = staticmethod(outbox.consumer_count)
    ack = staticmethod(outbox.ack)
    delete_expired = staticmethod(outbox.delete_expired)
    asset_scale = staticmethod(queries.asset_scale)


EVENTS = Events()
