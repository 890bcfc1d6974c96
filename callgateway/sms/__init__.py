"""Inbound SMS: consent keywords and texts kept for staff."""
