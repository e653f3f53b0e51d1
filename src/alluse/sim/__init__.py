"""Simulation helpers: trading results for tests, the benchmark and what-if runs."""
