"""The entrypoint adapts what the open-source KFP v2 launcher passes before TFX parses it."""

import http.server
import json
import os
import threading
import urllib.parse

from google.auth import credentials as auth_credentials
from google.cloud import storage
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import pytest
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from pipeline import pipeline as pipeline_def

from . import entrypoint
from . import runner

EXAMPLES_SCHEMA = ("title: tfx.Examples\ntype: object\nproperties:\n  split_names:\n"
                   "    type: string\n")
MODEL_SCHEMA = "title: tfx.Model\ntype: object\n"
INPUTS_SPEC = {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}},
                             "model": {"artifactType": {"instanceSchema": MODEL_SCHEMA}}}}


def executor_input(examples_type, model_type):
  return {"inputs": {"artifacts": {
      "examples": {"artifacts": [{"name": "57", "uri": "gs://b/ex", "type": examples_type,
                                  "metadata": {"split_names": '["train", "eval"]'}}]},
      "model": {"artifacts": [{"name": "61", "uri": "gs://b/model", "type": model_type,
                               "metadata": {}}]}}}}


def parse_inputs(executor_input_json):
  parsed = pipeline_spec_pb2.ExecutorInput()
  json_format.ParseDict(executor_input_json, parsed, ignore_unknown_fields=True)
  return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(parsed.inputs.artifacts, {})


@pytest.mark.parametrize("examples_type,model_type", [
    ({"instanceSchema": ""}, {"instanceSchema": ""}),  # Handed over: empty instanceSchema.
    ({"schemaTitle": "system.Dataset"}, {"schemaTitle": "system.Model"}),  # From ML Metadata.
    ({}, {}),  # No type at all.
])
def test_untyped_inputs_get_the_declared_tfx_types(examples_type, model_type):
  received = executor_input(examples_type, model_type)
  assert sorted(entrypoint.restore_input_types(received, INPUTS_SPEC)) == [
      "examples", "model"]
  inputs = parse_inputs(received)
  examples = artifact_utils.get_single_instance(inputs["examples"])
  assert isinstance(examples, standard_artifacts.Examples)
  assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
  assert isinstance(artifact_utils.get_single_instance(inputs["model"]),
                    standard_artifacts.Model)


def test_tfx_alone_fails_on_the_open_source_launchers_types():
  # What the entrypoint exists for (tensorflow/tfx#7768): TFX 1.16 cannot import `system.Model`.
  with pytest.raises(ImportError):
    parse_inputs(executor_input({"schemaTitle": "system.Dataset"},
                                {"schemaTitle": "system.Model"}))


def test_typed_inputs_are_left_as_they_are():
  typed = executor_input({"instanceSchema": EXAMPLES_SCHEMA}, {"schemaTitle": "tfx.Model"})
  assert entrypoint.restore_input_types(typed, INPUTS_SPEC) == []
  assert typed == executor_input({"instanceSchema": EXAMPLES_SCHEMA},
                                 {"schemaTitle": "tfx.Model"})


def test_an_untyped_input_the_task_does_not_declare_is_an_error():
  received = executor_input({"instanceSchema": ""}, {"instanceSchema": ""})
  with pytest.raises(ValueError, match="'model' has no TFX type"):
    entrypoint.restore_input_types(received, {"artifacts": {
        "examples": INPUTS_SPEC["artifacts"]["examples"]}})


def test_arguments_are_adapted_in_place_of_the_executor_input():
  received = executor_input({"instanceSchema": ""}, {"schemaTitle": "system.Model"})
  received["inputs"]["parameterValues"] = {"schema_file": runner.schema_uri(), "splits": "[]"}
  argv = ["entrypoint", "--executor_class_path", "x.Executor", "--json_serialized_invocation_args",
          json.dumps(received), "--json_serialized_inputs_spec_args", json.dumps(INPUTS_SPEC),
          "--runner=DirectRunner"]
  adapted = entrypoint.adapt_arguments(argv)
  assert adapted[:4] == argv[:4] and adapted[5:] == argv[5:]
  sent = json.loads(adapted[4])
  assert sent["inputs"]["artifacts"]["model"]["artifacts"][0]["type"] == {
      "instanceSchema": MODEL_SCHEMA}
  # The schema named as package data is the installed project's own file.
  schema_path = sent["inputs"]["parameterValues"]["schema_file"]
  with open(schema_path) as installed, open(pipeline_def.SCHEMA_FILE) as curated:
    assert installed.read() == curated.read()
  assert sent["inputs"]["parameterValues"]["splits"] == "[]"


def test_package_data_the_image_lacks_is_a_clear_error():
  with pytest.raises(FileNotFoundError, match="no file 'schema/missing.pbtxt'"):
    entrypoint.resolve_package_data("python-package://pipeline/schema/missing.pbtxt")
  with pytest.raises(FileNotFoundError, match="not installed"):
    entrypoint.resolve_package_data("python-package://no_such_package/x.txt")


# What the open-source driver hands a task from KFP 2.5 on (backend/src/v2/driver/driver.go,
# provisionOutputs, 2.5.0 :2024-2052): the declared outputs under
# ROOT/<pipeline>/<run>/<task>/<uuid4>/<key>, plus `executor-logs` typed system.Artifact; inputs
# named by their ML Metadata ids with an empty instanceSchema (metadata/converter.go,
# toRuntimeArtifact); the output file in the container (component/launcher_v2.go).
BLESSING_SCHEMA = "title: tfx.ModelBlessing\ntype: object\n"
TASK_ROOT = "s3://bucket/root/mnist-edgetpu/3f0c6c1e-run/Int8Evaluator/9a8b7c6d-salt"
KFP_25_EXECUTOR_INPUT = {
    "inputs": {
        "parameterValues": {"eval_split": "eval"},
        "artifacts": {
            "examples": {"artifacts": [{
                "name": "57", "type": {"instanceSchema": ""},
                "uri": "s3://bucket/root/mnist-edgetpu/3f0c6c1e-run/MnistExampleGen/1-salt/examples",
                "metadata": {"display_name": "examples", "split_names": '["train", "eval"]'}}]},
            "model": {"artifacts": [{
                "name": "61", "type": {"instanceSchema": ""},
                "uri": "s3://bucket/root/mnist-edgetpu/3f0c6c1e-run/Trainer/2-salt/model",
                "metadata": {"display_name": "model"}}]}}},
    "outputs": {
        "artifacts": {
            "blessing": {"artifacts": [{"type": {"instanceSchema": BLESSING_SCHEMA},
                                        "uri": f"{TASK_ROOT}/blessing"}]},
            "executor-logs": {"artifacts": [{"type": {"schemaTitle": "system.Artifact"},
                                             "uri": f"{TASK_ROOT}/executor-logs"}]}},
        "outputFile": "/tmp/kfp_outputs/output_metadata.json"}}


def parse_outputs(executor_input_json):
  parsed = pipeline_spec_pb2.ExecutorInput()
  json_format.ParseDict(executor_input_json, parsed, ignore_unknown_fields=True)
  return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(parsed.outputs.artifacts, {})


def test_tfx_alone_fails_on_the_executor_logs_output_of_kfp_2_5():
  with pytest.raises(ImportError):
    parse_outputs(KFP_25_EXECUTOR_INPUT)


def test_outputs_the_backend_added_are_left_to_the_launcher():
  received = json.loads(json.dumps(KFP_25_EXECUTOR_INPUT))
  argv = ["entrypoint", "--executor_class_path", "x.Executor", "--json_serialized_invocation_args",
          json.dumps(received), "--json_serialized_inputs_spec_args", json.dumps(INPUTS_SPEC)]
  sent = json.loads(entrypoint.adapt_arguments(argv)[4])
  assert list(sent["outputs"]["artifacts"]) == ["blessing"]
  assert sent["outputs"]["outputFile"] == KFP_25_EXECUTOR_INPUT["outputs"]["outputFile"]
  [blessing] = parse_outputs(sent)["blessing"]
  assert isinstance(blessing, standard_artifacts.ModelBlessing)
  assert blessing.uri == f"{TASK_ROOT}/blessing"
  inputs = parse_inputs(sent)
  assert isinstance(artifact_utils.get_single_instance(inputs["model"]), standard_artifacts.Model)
  # Vertex AI adds nothing: its ExecutorInput passes unchanged.
  vertex = {"outputs": {"artifacts": {"blessing": KFP_25_EXECUTOR_INPUT["outputs"]["artifacts"][
      "blessing"]}}}
  assert entrypoint.remove_backend_outputs(vertex) == []
  assert list(vertex["outputs"]["artifacts"]) == ["blessing"]


class GcsJsonApiStandIn(http.server.BaseHTTPRequestHandler):
  """A stand-in for Google Cloud Storage's JSON API on loopback (objects list and delete only):
  there is no GCS here. It proves the calls the clean-up makes, not GCS itself."""

  objects = {}  # {bucket: {name: size}}
  deleted = []

  def log_message(self, *args):
    pass

  def _reply(self, status, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def do_GET(self):
    url = urllib.parse.urlparse(self.path)
    bucket = url.path.split("/")[4]
    prefix = urllib.parse.parse_qs(url.query).get("prefix", [""])[0]
    items = [{"name": n, "bucket": bucket, "size": str(s)}
             for n, s in sorted(self.objects[bucket].items()) if n.startswith(prefix)]
    self._reply(200, {"kind": "storage#objects", "items": items})

  def do_DELETE(self):
    parts = urllib.parse.urlparse(self.path).path.split("/")
    bucket, name = parts[4], urllib.parse.unquote(parts[6])
    del self.objects[bucket][name]
    self.deleted.append(name)
    self._reply(204)


@pytest.mark.integration  # Starts a server.
def test_zero_byte_directory_markers_under_an_output_uri_are_deleted():
  GcsJsonApiStandIn.objects = {"bucket": {
      "root/Trainer/model/": 0,
      "root/Trainer/model/Format-Serving/": 0,
      "root/Trainer/model/Format-Serving/saved_model.pb": 1234,
      "root/Trainer/model/Format-Serving/empty.txt": 0,  # A real empty file stays.
      "root/Trainer/model_run/": 0,  # Another artifact's marker stays.
  }}
  GcsJsonApiStandIn.deleted = []
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GcsJsonApiStandIn)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    client = storage.Client(project="test", credentials=auth_credentials.AnonymousCredentials(),
                            client_options={"api_endpoint": endpoint})
    deleted = entrypoint.delete_gcs_directory_markers("gs://bucket/root/Trainer/model", client)
  finally:
    server.shutdown()
    server.server_close()
  assert deleted == ["root/Trainer/model/", "root/Trainer/model/Format-Serving/"]
  assert sorted(GcsJsonApiStandIn.deleted) == deleted
  assert set(GcsJsonApiStandIn.objects["bucket"]) == {
      "root/Trainer/model/Format-Serving/saved_model.pb",
      "root/Trainer/model/Format-Serving/empty.txt", "root/Trainer/model_run/"}


def test_local_output_uris_have_no_markers_to_delete(tmp_path):
  os.makedirs(tmp_path / "model" / "Format-Serving")
  assert entrypoint.delete_gcs_directory_markers(str(tmp_path / "model")) == []
  assert os.path.isdir(tmp_path / "model" / "Format-Serving")
