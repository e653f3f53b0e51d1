"""Secrets at rest and identity: the encryption keyring, password and API-key hashing, tokens."""
