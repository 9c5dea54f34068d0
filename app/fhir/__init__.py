"""FHIR R4: ingest from hospital and municipal systems (REST and CLI), and export of a patient's record."""
