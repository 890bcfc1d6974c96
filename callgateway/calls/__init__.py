"""The call core: a call from its first webhook to its last call-log row."""
