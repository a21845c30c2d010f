"""Offline work: training, batch jobs, schedules. Never run inside an HTTP request."""
