"""Installs the pipeline, its components, the trainer module, serving and the `mnist-tfx` command.

The project's packages are found here and nowhere else: every top-level directory with an
`__init__.py` except the tests and the benchmarks (the Makefile, ruff, pytest and the images
derive from the checkout). The `kubeflow/` folder is installed as the package `mnist_tfx.kubeflow`:
a top-level `kubeflow` package would shadow the `kubeflow` namespace that Kubeflow's own Python SDKs
install.
Python 3.10 exactly: the code needs 3.10 (`zip(strict=True)`, `X | Y` unions) and TFX 1.16's
wheels stop at 3.10.
"""

import setuptools

KUBEFLOW_DIR = "kubeflow"
KUBEFLOW_PACKAGE = "mnist_tfx.kubeflow"
PACKAGES = setuptools.find_packages(exclude=["tests", "tests.*", "benchmarks", KUBEFLOW_DIR,
                                             f"{KUBEFLOW_DIR}.*"])
KUBEFLOW_PACKAGES = [KUBEFLOW_PACKAGE + name[len(KUBEFLOW_DIR):]
                     for name in setuptools.find_packages(include=[KUBEFLOW_DIR,
                                                                   f"{KUBEFLOW_DIR}.*"])]

if __name__ == "__main__":
  setuptools.setup(
      name="mnist-edgetpu-tfx",
      version="0.1.0",
      description="A TFX pipeline that turns raw MNIST into a quantized model for the Edge TPU.",
      python_requires=">=3.10,<3.11",
      packages=PACKAGES + KUBEFLOW_PACKAGES,
      package_dir={KUBEFLOW_PACKAGE: KUBEFLOW_DIR},
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
