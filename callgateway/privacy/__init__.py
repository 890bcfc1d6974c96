"""Patients' data: retention dates and the sweep, rights, the audit trail."""
