"""Ray actors that give the domain its concurrency.

One PoolActor per pool, the OrderRouter, the pooled OrderExecutors, the
Dispatcher that feeds them from the Redis queue, and the MarketMaker that
moves the pools over time. Each is thin: state and concurrency here, the
math in ``sim``, the persistence in ``storage``.
"""
