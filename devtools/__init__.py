"""Dev tooling (local services, a fake Twilio REST API): never in the installed wheel."""
