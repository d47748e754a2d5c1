"""Installs the pipeline, its components, the trainer module and the `mnist-tfx` command."""

import setuptools

setuptools.setup(
    name="mnist-edgetpu-tfx",
    version="0.1.0",
    description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.",
    python_requires=">=3.9,<3.11",
    packages=setuptools.find_packages(
        include=["pipeline*", "components*", "trainer_module*", "serving*", "kubeflow*"]),
    package_data={"pipeline": ["schema/*.pbtxt"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "apache-beam[gcp]==2.61.0",
        "tensorflow-data-validation==1.16.1",
        "tensorflow-model-optimization==0.8.0",
        "kfp>=2,<3",
        "tflite==2.18.0",
        "ai-edge-litert",
    ],
    entry_points={"console_scripts": ["mnist-tfx=pipeline.cli:main"]},
    license="Apache-2.0",
)
