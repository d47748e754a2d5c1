"""AnomaliesGate's input and parameter keys (no TFX or TensorFlow import)."""

ANOMALIES_KEY = "anomalies"
ALLOW_ANOMALIES_KEY = "allow_anomalies"
