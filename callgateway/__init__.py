"""CallGateway: an AI voice gateway that answers the phone for medical clinics."""

__version__ = "0.1.0"
