"""Int8Evaluator's parameter keys, artifact files and blessing properties (no TFX or TensorFlow).

Imported by its component and executor, by the pusher (which ships only what was blessed) and by
every reader of an evaluation (summary, report, TensorBoard, serving).
"""

# Execution parameters (the blessing rules' defaults are in blessing.py, beside the rule).
MIN_INT8_ACCURACY_KEY = "min_int8_accuracy"
MAX_QUANTIZATION_DROP_KEY = "max_quantization_drop"
BASELINE_TOLERANCE_KEY = "baseline_tolerance"
EVAL_SPLIT_KEY = "eval_split"
# The pusher's destination: its newest verified version is the baseline (deployed.py).
PUSH_DESTINATION_KEY = "push_destination"

# Files inside the evaluation artifact's uri (and metrics.json, core/evaluation_metrics.py).
TENSORBOARD_DIR = "tensorboard"
CANDIDATE_TFLITE_FILE = "model_int8.tflite"
BASELINE_TFLITE_FILE = "baseline_model_int8.tflite"

# Custom properties of the ModelBlessing beside TFX's own (blessed, current_model_id, and
# baseline_model: the path of the deployed version compared with).
# The number of that version.
BASELINE_VERSION_PROPERTY = "baseline_version"
# The sha256 of the int8 bytes that were judged; the pusher records the same on its PushedModel.
TFLITE_SHA256_PROPERTY = "int8_tflite_sha256"
# The verdict in plain words, under TFX's name for it
# (tfx.components.evaluator.constants.ARTIFACT_PROPERTY_BLESSING_MESSAGE_KEY).
BLESSING_MESSAGE_PROPERTY = "blessing_message"
