"""Kubeflow Pipelines v2: compiling the pipeline, the components' image and its entrypoint.

Installed as `mnist_tfx.kubeflow` (see setup.py), never as a top-level `kubeflow` package.
"""
