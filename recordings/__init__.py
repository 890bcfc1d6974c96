"""Recordings: the announcement policy and the lifecycle Twilio -> region bucket -> verified."""
