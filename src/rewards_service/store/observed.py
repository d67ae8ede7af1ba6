"""What metrics read from the store when scraped, each with one bounded query on a connection
of its own, opened and closed by the scrape: the serving process may be the --workers parent,
which keeps no connection that a worker forked later could inherit."""

from rewards_service.store.db import open_database

# Full scans of code_pool: cheap next to codes (tens of thousands of pools in milliseconds).
_LOWEST = (
    "SELECT program_id, id, available_count FROM code_pool "
    "ORDER BY available_count, id LIMIT {limit}"
)
_TOTALS = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN available_count <= 0 THEN 1 ELSE 0 END), 0) "
    "FROM code_pool"
)


def code_pool_stock(database_url: str, limit: int) -> tuple[list[tuple[str, str, int]], int, int]:
    """(the `limit` pools with the fewest codes left as (program, pool, available), pools,
    pools with none left)."""
    db = open_database(database_url, pool_size=1)
    db.connect()
    try:
        lowest = db.execute_sql(_LOWEST.format(limit=int(limit))).fetchall()
        pools, empty = db.execute_sql(_TOTALS).fetchone()
    finally:
        close_all = getattr(db, "close_all", None)
        if close_all is not None:
            close_all()
        else:
            db.close()
    return [(p, c, int(n)) for p, c, n in lowest], int(pools), int(empty)
