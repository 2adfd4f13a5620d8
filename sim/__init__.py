"""The DEX domain: tokens, pool math, routing, orders and a moving market.

Pure Python + numpy: no Ray, no I/O, deterministic for a given seed. Every
amount is an integer in the token's base units, as on chain.
"""
