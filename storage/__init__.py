"""Storage: PostgreSQL (orders, status history, pool trades) and Redis (queue, events, rate limits).

PostgreSQL through psycopg 3 and psycopg_pool, Redis through ``redis.asyncio``;
the servers themselves, when no URL is given, come from ``localservers``.
Modules are imported directly (``from storage.orders import OrderStore``), so
importing one part never pulls in the others' drivers.
"""
