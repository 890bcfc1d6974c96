"""Appointments: when a clinic can see a patient, and booking, moving and cancelling."""
