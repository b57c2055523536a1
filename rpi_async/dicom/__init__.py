"""DICOM vocabulary shared by every layer: coded concepts, UIDs and statuses."""
