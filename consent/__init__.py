"""Consent: the opt-out ledger and the gate every AI turn and outbound action passes."""
