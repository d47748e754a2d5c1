"""The pipeline definition (pipeline.py) and its thin runners and command line."""

# The pipeline's name in ML Metadata: runs of one name share the cache and the blessed-model history.
PIPELINE_NAME = "mnist-edgetpu"
