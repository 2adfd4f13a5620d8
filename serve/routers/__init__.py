"""The API's endpoints, one router per resource: orders, their streams, the market, operations."""
