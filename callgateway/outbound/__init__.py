"""Outbound contact: appointment reminders, check-in calls and the alerts they raise.

Every send asks the consent gate at send time, claims its idempotency row first, and runs
in an RQ job that carries ids only.
"""
