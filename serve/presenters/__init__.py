"""Turning the engine's records and answers (snake_case, base units) into the API's response models."""
