"""The benchmark: starts the engine with chosen settings, drives it, writes a report.

    python -m loadtest.benchmark --require-clean   # the full run, every phase; figures for the README
    python -m loadtest.benchmark --quick    # shorter phases, fewer watcher steps, no pools49
    python -m loadtest.benchmark --phases ceiling,ws --ceiling-duration 30

Writes ``loadtest/results/benchmark-<ts>.md`` and ``benchmark-<ts>.png``
(throughput and latency over time), keeps the raw numbers in
``benchmark-<ts>.json`` and py-spy's stacks in ``benchmark-<ts>-profiles/``,
and prints the figures, ending with the issue's rows (the scorecard: each
measured value against its must and goal, pass/fail, a ratio, what limits
it). The report names the commit and whether the tree was clean (else the
files that were not); ``--require-clean`` refuses to start on a dirty tree.
Phases, each on an engine of its own (started as a child process with its
own data dir, a free port on 127.0.0.1, no dashboard; stopped at the end of
the phase):

0. ``idle`` — ``loadtest.idle``'s measure: start -> first healthy answer,
   idle CPU of the whole stack over a window, PSS; the defaults (the market
   moving), then the market still. ``pools49`` — the same on a market of 49
   pools (each default pool 7 times), with what one pool actor costs.
1. ``seed`` — configs/engine.yaml as it is (10 executors, 100 orders/min,
   ~200 ms quotes, 2-3 s execution, the market on). A backlog of orders is
   kept queued; sustained throughput over whole minutes is compared with
   min(rate limit, executors / mean order time).
2. ``ceiling`` — no simulated delay, no rate limit, no market. Orders per
   second end to end (POST accepted -> confirmed in PostgreSQL -> the final
   event received on the order's WebSocket) with a closed loop of clients,
   and the engine's own overhead per order (with zero latencies the whole
   time is overhead), unloaded (one order at a time) and at the ceiling;
   CPU per order net of the engine's idle CPU, measured first. Then the
   ingress's own ceiling on the same engine and concurrency (a trivial
   HTTP request, a trivial WebSocket session): orders/s over it is a ratio
   that holds on another machine. The busiest processes are sampled with py-spy.
3. ``ws`` — WebSocket delivery latency (status committed in PostgreSQL ->
   client received), a few orders at a time (engine idle-ish).
4. ``watchers`` — concurrent WebSocket watchers held on one node while
   their own events (every watcher's, not the probe orders' alone) still
   arrive within 100 ms p99, stepped up (bounded).
5. memory (PSS) of the whole engine process tree — Ray, Serve, actors,
   PostgreSQL, Redis — idle and under load, in every phase.

The client is one asyncio process (httpx + websockets), not Locust, so that
every timestamp is taken where the message lands; its CPU is reported beside
each figure, as is the machine's (other users of the 2 cores show there).

The package, a module a job: ``cli`` (options) and ``runner`` (the phases
in turn, then the report); the phases ``at_rest`` (0), ``seed``,
``ceiling`` (with ``ingress`` and ``per_order``), ``delivery`` (3) and
``watchers``, each but ``at_rest`` on a ``phase.Phase`` (its engine and
memory samples); ``client`` (the asyncio order client), ``processes`` (CPU
and memory by process role), ``profiling`` (py-spy), ``stats`` and
``series``; the report: ``scorecard`` (the issue's rows), ``figures`` (the
table, what limited each figure), ``markdown``, ``at_rest_report``,
``chart``, ``formatting`` and ``machine`` (and the tree's state).
"""
