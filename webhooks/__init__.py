"""The webhook intake, the same for every platform: verify and store before the answer
(acceptance), parse and ingest after it (worker, processing), privacy requests, replay and
back-fills (commands)."""
