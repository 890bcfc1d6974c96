"""Load benchmark for the Twilio webhooks; run with `python -m bench`."""
