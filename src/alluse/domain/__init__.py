"""Pure domain: no I/O. Money, accounts and allocation, the cash buffer, ledger postings."""
