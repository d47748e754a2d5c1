"""Int8Evaluator's parameter keys, artifact files and blessing properties (no TFX or TensorFlow).

Imported by its component and executor, by the pusher (which ships only what was blessed) and by
every reader of an evaluation (summary, report, TensorBoard, serving).
"""

# Execution parameters (the blessing rules' defaults are in blessing.py, beside the rule).
MIN_INT8_ACCURACY_KEY = "min_int8_accuracy"
MAX_QUANTIZATION_DROP_KEY = "max_quantization_drop"
BASELINE_TOLERANCE_KEY = "baseline_tolerance"
EVAL_SPLIT_KEY = "eval_split"

# Files inside the evaluation artifact's uri.
METRICS_FILE = "metrics.json"
TENSORBOARD_DIR = "tensorboard"
CANDIDATE_TFLITE_FILE = "model_int8.tflite"
BASELINE_TFLITE_FILE = "baseline_model_int8.tflite"

# Custom properties of the ModelBlessing beyond TFX's own (blessed, current_model_id, ...).
TFLITE_SHA256_PROPERTY = "int8_tflite_sha256"  # The int8 bytes that were judged.
REASON_PROPERTY = "reason"  # The verdict in plain words.
