"""The benchmark: starts the engine with chosen settings, drives it, writes a report.

    python -m loadtest.benchmark            # ~10 minutes; the full run
    python -m loadtest.benchmark --quick    # ~5 minutes; shorter phases, fewer watcher steps
    python -m loadtest.benchmark --phases ceiling,ws --ceiling-duration 30

Writes ``loadtest/results/benchmark-<ts>.md`` and ``benchmark-<ts>.png``
(throughput and latency over time), keeps the raw numbers in
``benchmark-<ts>.json`` and py-spy's stacks in ``benchmark-<ts>-profiles/``,
and prints the figures. Phases, each on an engine of its own (started as a
child process with its own data dir, a free port on 127.0.0.1, no
dashboard; stopped at the end of the phase):

1. ``seed`` — configs/engine.yaml as it is (10 executors, 100 orders/min,
   ~200 ms quotes, 2-3 s execution, the market on). A backlog of orders is
   kept queued; sustained throughput over whole minutes is compared with
   min(rate limit, executors / mean order time).
2. ``ceiling`` — no simulated delay, no rate limit, no market. Orders per
   second end to end (POST accepted -> confirmed in PostgreSQL -> the final
   event received on the order's WebSocket) with a closed loop of clients,
   and the engine's own overhead per order (with zero latencies the whole
   time is overhead), unloaded (one order at a time) and at the ceiling.
   The busiest processes are sampled with py-spy.
3. ``ws`` — WebSocket delivery latency (status committed in PostgreSQL ->
   client received), a few orders at a time (engine idle-ish).
4. ``watchers`` — concurrent WebSocket watchers held on one node while
   events still arrive within 100 ms p99, stepped up (bounded).
5. memory (PSS) of the whole engine process tree — Ray, Serve, actors,
   PostgreSQL, Redis — idle and under load, in every phase.

The client is one asyncio process (httpx + websockets), not Locust, so that
every timestamp is taken where the message lands; its CPU is reported beside
each figure, as is the machine's (other users of the 2 cores show there).

The package, a module a job: ``cli`` (options) and ``runner`` (the phases
in turn, then the report); the phases ``seed``, ``ceiling``, ``delivery``
(3) and ``watchers``, each on a ``phase.Phase`` (its engine and memory
samples); ``client`` (the asyncio order client), ``processes`` (CPU and
memory by process role), ``profiling`` (py-spy), ``stats`` and ``series``;
the report: ``figures`` (the table, what limited each figure), ``markdown``,
``chart``, ``formatting`` and ``machine``.
"""
