"""Brokerage accounts: parsing their names, the paper broker, the portfolio's pool."""
