"""Demo material: a seeded, synthetic store so Shelfwise can be tried without a real shop."""
