"""Scenarios: the whitepaper's use cases and failures, each measured.
Shared harness pieces live next to them (results)."""
