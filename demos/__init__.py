"""Trainer demos: the whitepaper's traffic flows stepped through on a real
lab, with per-hop captures, a sequence diagram and a topology picture."""
