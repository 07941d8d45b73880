"""The DICOM C-STORE receiver: modalities send dose objects straight to doseflow."""
