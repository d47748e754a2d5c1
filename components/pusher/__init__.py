"""EdgeTpuPusher: checks, compiles for the Edge TPU and atomically pushes the blessed int8 model."""
