"""The outside world behind narrow interfaces: Twilio REST, region buckets, clock, mail."""
