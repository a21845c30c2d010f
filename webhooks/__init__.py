"""The webhook intake: record, verify, dedupe, parse, ingest, answer — the same for every platform."""
