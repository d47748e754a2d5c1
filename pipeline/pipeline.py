"""The one definition of the pipeline's wiring; the runners (local, Kubeflow) only run it.

MnistExampleGen → StatisticsGen ← ImportSchemaGen → ExampleValidator → AnomaliesGate → Trainer
→ Int8Evaluator (against the deployed model: the newest verified version in the push destination)
→ EdgeTpuPusher.

Every node is a container component (no Resolver): the open-source Kubeflow Pipelines backend
refuses any other executor when a run is created, and local runs, Vertex AI and open-source KFP
then behave alike.
"""

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.anomalies_gate.component import AnomaliesGate
from components.evaluator import blessing as blessing_lib
from components.evaluator import component as evaluator_component
from components.example_validator.component import ExampleValidator
from components.mnist_example_gen.component import MnistExampleGen
from components.pusher import constants as pusher_constants
from components.pusher.component import EdgeTpuPusher
from components.statistics_gen.component import StatisticsGen
from core import contract
from core import paths
from pipeline import code_fingerprint
from pipeline import configs
from pipeline import object_store
from trainer_module import hparams as hparams_lib

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema", "schema.pbtxt")
# Node ids that run every time, on every runner: their result depends on the push destination (what
# is deployed), which is no input of theirs, so a cache key of inputs and parameters would hand
# back a verdict or a push made against another deployed version. TFX 1.16 has only a pipeline-wide
# cache switch: the runners turn caching off for these nodes in what they compile.
ALWAYS_RUN = ("Int8Evaluator", "EdgeTpuPusher")


def _data_validation(data_dir: str, data_fingerprint: Optional[str], schema_file: str,
                     allow_anomalies: bool) -> Tuple[Any, ...]:
  """MnistExampleGen -> StatisticsGen <- ImportSchemaGen -> ExampleValidator -> AnomaliesGate."""
  example_gen = MnistExampleGen(input_dir=data_dir, input_fingerprint=data_fingerprint)
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
  # The schema marks `label` categorical, so its statistics carry the value distribution that the
  # train/eval skew comparator needs.
  statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"],
                                 schema=schema_gen.outputs["schema"])
  example_validator = ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                       schema=schema_gen.outputs["schema"])
  anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"],
                                 allow_anomalies=allow_anomalies)
  return example_gen, schema_gen, statistics_gen, example_validator, anomalies_gate


def _trainer_config(trainer: str, train_config: Optional[Dict[str, Any]],
                    pipeline_root: str) -> Dict[str, Any]:
  """The Trainer's custom_config: the user's settings, checked now (bad hyperparameters fail when
  the pipeline is built, not after the data half ran), plus the training code's fingerprint and,
  for the hand-built trainer, its checkpoint root.

  Raises:
    ValueError: an unknown trainer, key or value.
  """
  if trainer not in configs.TRAINER_RUN_FNS:
    raise ValueError(f"Unknown trainer {trainer!r}; expected one of "
                     f"{sorted(configs.TRAINER_RUN_FNS)}.")
  custom_config = dict(train_config or {})
  if trainer == configs.HAND_BUILT_TRAINER:
    hparams_lib.HParams.from_config(custom_config)
    # A stable checkpoint root: a retried Trainer resumes from its last finished epoch (the trainer
    # keys the directory by data and hyperparameters). The Keras baseline always starts afresh.
    custom_config.setdefault("checkpoint_dir", paths.trainer_checkpoints_dir(pipeline_root))
  else:
    from trainer_module import keras_baseline  # Imports tfmot: only for the baseline.
    keras_baseline.parse_config(custom_config)
  # The Trainer's cache key holds run_fn's import path, not the code behind it: this makes it
  # follow the training code (and the hand-built trainer keys its checkpoints by it too).
  custom_config[hparams_lib.CODE_FINGERPRINT_KEY] = code_fingerprint.fingerprint()
  return custom_config


def create_pipeline(
    pipeline_root: str,
    data_dir: str,
    data_fingerprint: Optional[str] = None,
    pipeline_name: str = configs.PIPELINE_NAME,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[List[str]] = None,
    allow_anomalies: bool = False,
    enable_cache: bool = True,
    schema_file: str = SCHEMA_FILE,
    trainer: str = configs.DEFAULT_TRAINER,
    train_config: Optional[Dict[str, Any]] = None,
    push_destination: Optional[str] = None,
    min_int8_accuracy: float = blessing_lib.DEFAULT_MIN_INT8_ACCURACY,
    max_quantization_drop: float = blessing_lib.DEFAULT_MAX_QUANTIZATION_DROP,
    baseline_tolerance: float = blessing_lib.DEFAULT_BASELINE_TOLERANCE,
    compiler_path: Optional[str] = None,
    compiler_flags: Sequence[str] = pusher_constants.DEFAULT_COMPILER_FLAGS,
    compiler_timeout_seconds: int = pusher_constants.DEFAULT_COMPILER_TIMEOUT_SECONDS,
    require_edgetpu: bool = pusher_constants.DEFAULT_REQUIRE_EDGETPU,
    require_full_edgetpu_mapping: bool = pusher_constants.DEFAULT_REQUIRE_FULL_EDGETPU_MAPPING,
) -> tfx.dsl.Pipeline:
  """Builds the pipeline.

  Args:
    pipeline_root: where every artifact is written (any fileio path).
    data_dir: the MNIST-format IDX files (the four standard names, gzipped or raw).
    data_fingerprint: their `idx.input_fingerprint`, for orchestrators that do not run
      MnistExampleGen's driver (Kubeflow Pipelines), so that the cache key follows the data.
    pipeline_name: the MLMD context; runs of one name share cache and blessed-model history.
      It must follow configs.PIPELINE_NAME_RULE (Kubeflow's), else ValueError.
    metadata_connection_config: MLMD connection (None on Kubeflow, which brings its own).
    beam_pipeline_args: Beam options for every Beam-based component.
    allow_anomalies: train even when ExampleValidator reports anomalies (the gate only warns).
    enable_cache: reuse a component's outputs when its inputs and parameters are unchanged.
    schema_file: the curated schema imported by ImportSchemaGen.
    trainer: a key of configs.TRAINER_RUN_FNS.
    train_config: the trainer's hyperparameters (its custom_config), e.g. {"epochs": 3}.
    push_destination: where versions of the Edge TPU model are pushed (default:
      PIPELINE_ROOT/pushed_models); its newest verified version is the evaluator's baseline.
    min_int8_accuracy, max_quantization_drop, baseline_tolerance: the evaluator's blessing rules
      (fractions): int8 accuracy floor, float-minus-int8 limit, allowed shortfall vs. the deployed
      model.
    compiler_path, compiler_flags: edgetpu_compiler to run (default: found on PATH) and extra flags.
    compiler_timeout_seconds: kill the compiler and fail the push after this many seconds.
    require_edgetpu: fail the push when no Edge TPU binary can be produced.
    require_full_edgetpu_mapping: fail the push when not every operation maps to the Edge TPU.
  """
  configs.check_pipeline_name(pipeline_name)
  custom_config = _trainer_config(trainer, train_config, pipeline_root)
  example_gen, schema_gen, statistics_gen, example_validator, anomalies_gate = (
      _data_validation(data_dir, data_fingerprint, schema_file, allow_anomalies))
  trainer_component = tfx.components.Trainer(
      run_fn=configs.TRAINER_RUN_FNS[trainer],
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT]),
      eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL_SPLIT]),
      custom_config=custom_config,
  )
  # The stock Trainer has no anomalies input: this edge is what stops training on bad data.
  trainer_component.add_upstream_node(anomalies_gate)

  destination = push_destination or paths.default_push_destination(pipeline_root)
  # The model to beat is what is deployed: the newest verified version the pusher published there.
  evaluator = evaluator_component.Int8Evaluator(
      examples=example_gen.outputs["examples"],
      model=trainer_component.outputs["model"],
      push_destination=destination,
      min_int8_accuracy=min_int8_accuracy,
      max_quantization_drop=max_quantization_drop,
      baseline_tolerance=baseline_tolerance,
  )
  pusher = EdgeTpuPusher(
      model=trainer_component.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      evaluation=evaluator.outputs["evaluation"],
      push_destination=destination,
      compiler_path=compiler_path,
      compiler_flags=compiler_flags,
      compiler_timeout_seconds=compiler_timeout_seconds,
      require_edgetpu=require_edgetpu,
      require_full_edgetpu_mapping=require_full_edgetpu_mapping,
  )

  components: List[Any] = [
      example_gen, schema_gen, statistics_gen, example_validator, anomalies_gate,
      trainer_component, evaluator, pusher
  ]
  code_fingerprint.stamp(components)  # Each cache key follows its component's code.
  return tfx.dsl.Pipeline(
      pipeline_name=pipeline_name,
      pipeline_root=pipeline_root,
      components=components,
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      # Beam's workers import the s3:// filesystem too when a path is on s3://.
      beam_pipeline_args=object_store.beam_args([pipeline_root, data_dir, destination],
                                                beam_pipeline_args or []),
  )
