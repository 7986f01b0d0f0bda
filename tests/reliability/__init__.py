"""The fault matrix (issue 13 §4) and the load tests: what users see under faults, and what must still hold."""
