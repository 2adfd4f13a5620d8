"""The engine: configuration, settings and wiring of the simulated DEX order engine."""
