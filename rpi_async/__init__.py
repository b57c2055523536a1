"""rpi-async: a high-throughput DICOM Relevant Patient Information Query SCP."""

__version__ = "0.1.0"

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1477.1.1"
IMPLEMENTATION_VERSION_NAME = "RPI_ASYNC_010"
