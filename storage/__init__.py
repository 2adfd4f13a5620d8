"""Storage: PostgreSQL (orders, status history, pool trades) and Redis (queue, events, rate limits).

PostgreSQL through psycopg 3 and psycopg_pool, Redis through ``redis.asyncio``;
``storage.local`` starts real servers from pip wheels when no URL is given.
Modules are imported directly (``from storage.orders import OrderStore``), so
importing one part never pulls in the others' drivers.
"""
