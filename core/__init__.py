"""The shared kernel: what every layer of the project agrees on, and nothing that runs a pipeline.

The data and model contract (`contract`, and `features` for its TensorFlow side), the payload files
two parts exchange (`evaluation_metrics` for the evaluator's metrics.json, `push_manifest` for a
pushed version's model.json and files), the pushed-version rule (`versions`), hashing, the one
full-int8 conversion (`int8_tflite`, TensorFlow) and the one int8 runtime (`int8_runtime`, LiteRT),
the latency measurement, default paths, errors with their exit codes, and strict settings parsing.

Everything above imports from here; nothing here imports the project's other packages. Modules
other than `features` and `int8_tflite` import neither TensorFlow, TFX nor Beam: serving and its
image use them alone (the layer contracts in .importlinter check both rules).
"""
