"""``python -m loadtest.chaos --duration 120``: orders under load while everything breaks, then the books are checked.

It starts an engine of its own, in process (PostgreSQL and Redis from the
pip wheels in a temporary data dir, a local Ray with its own temp dir, the
engine's actors, the Serve API on a free port of 127.0.0.1, the market
moving), drives a bounded order load through the API over HTTP (asyncio
httpx clients, a few ``X-Client-Id``s) and follows a sample of the orders on
their WebSockets, and meanwhile injects a seeded, shuffled mix of faults:

* an executor killed mid-order (two at a time), a pool actor, the router,
  the dispatcher, the market maker killed (Ray restarts them);
* Redis restarted, and Redis down for a few seconds;
* PostgreSQL down for a few seconds;
* the Serve replica killed (Serve starts another; WebSocket clients reconnect);
* the whole engine killed outright and started again;
* with ``--chain`` (orders land through the simulated chain): the chain actor
  killed (its pending transactions gone, as from a restarted RPC node), and
  its congestion switched among calm, busy and congested.

When the load ends it waits until every accepted order is final, stops the
market, and checks the books with the audit of ``dexengine audit`` (no double
fill, every history gapless, legal and ending once, fills consistent with the
outcome, each pool's genesis + its recorded trades == its last recorded
state, no order stalled or lost by the queue), then what only the run knows:
no accepted order lost, each pool actor's reserves == its books, and every
followed order's WebSocket events == its recorded history. It prints a
summary and exits 1 if any of that broke (2 if the engine could not be
started).

The package, a module a job: ``engine`` (bringing the engine up and down),
``faults`` (the injectors), ``load`` (the HTTP clients and WebSocket
followers), ``books`` (the invariants: the audit, the pool actors, the
WebSocket streams), ``summary`` (what is printed, the exit code), ``tally``
(what the load and the faults saw) and ``cli``.
"""
