"""REST API v1 for clients, products, holdings, transactions and branches (docs/api.md)."""
