"""`mnist-tfx`: the command line, the local runner and what a person reads after a run.

The top layer (.importlinter): it imports the Kubeflow runner, the pipeline, serving, the
components, the trainers and the shared kernel (`core/`); nothing imports it.
"""
