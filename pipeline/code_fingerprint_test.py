"""The training-code fingerprint: what changes it, what does not, and the Trainer cache it keys."""

import json
import os
import shutil

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
import pytest
from tfx import v1 as tfx

from core import contract
from pipeline import code_fingerprint
from trainer_module import hparams as hparams_lib

Execution = metadata_store_pb2.Execution


@pytest.fixture
def project_copy(tmp_path) -> str:
  """A copy of the project's packages the tests may edit."""
  root = str(tmp_path / "project")
  for package in ("core", "components", "pipeline", "trainer_module"):
    shutil.copytree(os.path.join(code_fingerprint.PROJECT_ROOT, package),
                    os.path.join(root, package),
                    ignore=shutil.ignore_patterns("__pycache__"))
  return root


def edit(root: str, relative: str, old: str, new: str) -> None:
  path = os.path.join(root, relative)
  with open(path) as f:
    text = f.read()
  assert old in text, (relative, old)
  with open(path, "w") as f:
    f.write(text.replace(old, new, 1))


def test_follows_the_trainer_package_and_the_project_modules_it_imports():
  files = code_fingerprint.training_code_files()
  assert {"trainer_module/layers.py", "trainer_module/quantizers.py", "trainer_module/run.py",
          "trainer_module/keras_baseline.py", "core/contract.py", "core/features.py",
          "core/__init__.py"} <= set(files)
  assert not [f for f in files if f.endswith("_test.py")]
  assert "components/pusher/executor.py" not in files  # Not imported by the training code.
  assert len(code_fingerprint.fingerprint()) == 64


def test_a_copy_has_the_same_fingerprint(project_copy):
  assert code_fingerprint.fingerprint(project_copy) == code_fingerprint.fingerprint()


@pytest.mark.parametrize("relative, old, new", [
    ("trainer_module/hparams.py", "dense_units: int = 128", "dense_units: int = 256"),
    ("trainer_module/quantizers.py", "narrow_range", "narrow_range "),
    ("core/features.py", "def ", "def  "),  # Imported by the trainer: its pixel scaling.
])
def test_an_edit_to_the_training_code_changes_it(project_copy, relative, old, new):
  before = code_fingerprint.fingerprint(project_copy)
  edit(project_copy, relative, old, new)
  assert code_fingerprint.fingerprint(project_copy) != before


def test_a_new_module_imported_by_the_trainer_is_followed(project_copy):
  before = code_fingerprint.fingerprint(project_copy)
  with open(os.path.join(project_copy, "components", "augment.py"), "w") as f:
    f.write("SHIFT = 2\n")
  assert code_fingerprint.fingerprint(project_copy) == before  # Not imported yet.
  edit(project_copy, "trainer_module/train.py", "from core import contract\n",
       "from components import augment\nfrom core import contract\n")
  changed = code_fingerprint.fingerprint(project_copy)
  assert changed != before
  assert "components/augment.py" in code_fingerprint.training_code_files(project_copy)
  edit(project_copy, "components/augment.py", "2", "3")
  assert code_fingerprint.fingerprint(project_copy) != changed


def test_tests_and_code_the_trainer_does_not_import_leave_it_alone(project_copy):
  before = code_fingerprint.fingerprint(project_copy)
  edit(project_copy, "trainer_module/train_test.py", "def ", "def  ")
  edit(project_copy, "components/pusher/executor.py", "def ", "def  ")
  assert code_fingerprint.fingerprint(project_copy) == before


def test_create_pipeline_passes_it_to_the_trainer(tmp_path):
  from pipeline import configs
  from pipeline import pipeline as pipeline_def
  for trainer in sorted(configs.TRAINER_RUN_FNS):
    built = pipeline_def.create_pipeline(str(tmp_path), str(tmp_path / "data"), trainer=trainer,
                                         train_config={"epochs": 1})
    [trainer_node] = [c for c in built.components if c.id == "Trainer"]
    custom_config = json.loads(trainer_node.exec_properties["custom_config"])
    assert custom_config[hparams_lib.CODE_FINGERPRINT_KEY] == code_fingerprint.fingerprint()


PROJECT_COMPONENTS = {"MnistExampleGen": "components/mnist_example_gen/executor.py",
                      "StatisticsGen": "components/statistics_gen/executor.py",
                      "ExampleValidator": "components/example_validator/executor.py",
                      "AnomaliesGate": "components/anomalies_gate/executor.py",
                      "Int8Evaluator": "components/evaluator/blessing.py",
                      "EdgeTpuPusher": "components/pusher/versioned_push.py"}


def test_create_pipeline_gives_each_project_component_the_fingerprint_of_its_code(tmp_path):
  from pipeline import pipeline as pipeline_def
  built = pipeline_def.create_pipeline(str(tmp_path), str(tmp_path / "data"))
  stamped = {c.id: c.exec_properties.get(code_fingerprint.EXEC_PROPERTY) for c in built.components}
  # TFX's own ImportSchemaGen and Trainer are pinned by the lock (the Trainer's run_fn has its own
  # fingerprint in custom_config).
  assert {node for node, code in stamped.items() if code is None} == {"ImportSchemaGen",
                                                                      "Trainer"}
  for node_id, code_file in PROJECT_COMPONENTS.items():
    component = next(c for c in built.components if c.id == node_id)
    assert code_file in code_fingerprint.module_code_files(type(component).__module__), node_id
    assert stamped[node_id] == code_fingerprint.component_fingerprint(component)
  assert len(set(stamped.values()) - {None}) == len(PROJECT_COMPONENTS)  # One each.


def test_an_edit_to_a_components_code_changes_its_fingerprint_alone(tmp_path, project_copy):
  """The issue's example: an edit to the blessing rule left the compiled spec byte-identical."""
  from pipeline import pipeline as pipeline_def
  components = {c.id: c for c in pipeline_def.create_pipeline(
      str(tmp_path), str(tmp_path / "data")).components}

  def fingerprints():
    return {node_id: code_fingerprint.component_fingerprint(components[node_id], project_copy)
            for node_id in PROJECT_COMPONENTS}

  before = fingerprints()
  assert before == {node_id: components[node_id].exec_properties[code_fingerprint.EXEC_PROPERTY]
                    for node_id in PROJECT_COMPONENTS}  # A copy of the code: the same.
  edit(project_copy, "components/evaluator/blessing.py", "_ROUNDING = 1e-9", "_ROUNDING = 1e-8")
  after = fingerprints()
  assert {node for node in before if before[node] != after[node]} == {"Int8Evaluator"}


def _trainer_pipeline(examples_dir: str, root: str, fingerprint: str) -> tfx.dsl.Pipeline:
  importer = tfx.dsl.Importer(
      source_uri=examples_dir, artifact_type=tfx.types.standard_artifacts.Examples,
      properties={"split_names": '["train", "eval"]'}).with_id("examples_importer")
  trainer = tfx.components.Trainer(
      run_fn="trainer_module.run.run_fn", examples=importer.outputs["result"],
      train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT], num_steps=2),
      eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL_SPLIT]),
      custom_config={"epochs": 1, "batch_size": 32,
                     hparams_lib.CODE_FINGERPRINT_KEY: fingerprint})
  return tfx.dsl.Pipeline(
      pipeline_name="code-fingerprint-test", pipeline_root=os.path.join(root, "pipeline_root"),
      components=[importer, trainer], enable_cache=True,
      metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
          os.path.join(root, "metadata.sqlite")))


def test_an_edited_trainer_is_retrained_not_served_from_the_cache(examples_dir, project_copy,
                                                                  tmp_path):
  """The real TFX Trainer on LocalDagRunner (2 training steps): same code -> cached; the code
  fingerprinted after an edit -> a new training."""
  root = str(tmp_path / "runs")

  def run_and_states():
    pipeline = _trainer_pipeline(examples_dir, root, code_fingerprint.fingerprint(project_copy))
    tfx.orchestration.LocalDagRunner().run(pipeline)
    store = metadata_store.MetadataStore(pipeline.metadata_connection_config)
    trainer_type = store.get_execution_type("tfx.components.trainer.component.Trainer")
    return [e.last_known_state for e in sorted(store.get_executions_by_type(trainer_type.name),
                                               key=lambda e: e.id)]

  assert run_and_states() == [Execution.COMPLETE]
  assert run_and_states() == [Execution.COMPLETE, Execution.CACHED]
  edit(project_copy, "trainer_module/layers.py", "def ", "def  ")
  assert run_and_states() == [Execution.COMPLETE, Execution.CACHED, Execution.COMPLETE]
