"""Installs the pipeline, its components, the trainer module, serving and the `mnist-tfx` command.

The `kubeflow/` folder is installed as the package `mnist_tfx.kubeflow`: a top-level `kubeflow`
package would shadow the `kubeflow` namespace that Kubeflow's own Python SDKs install.
"""

import setuptools

PACKAGES = setuptools.find_packages(
    include=["pipeline*", "components*", "trainer_module*", "serving*", "mnist_tfx*"])
KUBEFLOW_PACKAGES = ["mnist_tfx.kubeflow" + name[len("kubeflow"):]
                     for name in setuptools.find_packages(include=["kubeflow*"])]

setuptools.setup(
    name="mnist-edgetpu-tfx",
    version="0.1.0",
    description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.",
    python_requires=">=3.9,<3.11",
    packages=PACKAGES + KUBEFLOW_PACKAGES,
    package_dir={"mnist_tfx.kubeflow": "kubeflow"},
    package_data={"pipeline": ["schema/*.pbtxt"], "serving": ["page.html"],
                  "mnist_tfx": ["templates/*.j2"]},
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
    entry_points={"console_scripts": ["mnist-tfx=mnist_tfx.cli:main"]},
    license="Apache-2.0",
)
