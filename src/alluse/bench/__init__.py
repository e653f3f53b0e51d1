"""`alluse bench`: throughput of the real use cases against a raw-driver baseline in the same run."""
