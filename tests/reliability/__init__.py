"""Reliability campaigns: crashes, node faults, replicas, hostile input, security and load.

The drivers here run as commands (`python -m tests.reliability.crash_campaign ...`) and as
short, seeded runs in the test suite (`tests/integration/reliability/`).
"""
