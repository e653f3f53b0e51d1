"""Use cases. Each public function is one unit of work: idempotency key(s) in, JSON-able result out."""
