"""doseflow's own shared package: message schemas, settings, broker, database and DICOM helpers."""
