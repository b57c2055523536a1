"""Load generator for DICOM RPI Query SCPs: ``rpi-async bench`` and the benchmark suite."""
