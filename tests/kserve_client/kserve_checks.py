"""Runs in the kserve venv (tests/kserve_client/requirements.lock), never in the project's: reads
serving/kserve/inferenceservice.yaml into kserve's own V1beta1InferenceService model and talks to
a running server with kserve's InferenceRESTClient (V2 binary and JSON, V1).

  python kserve_checks.py MANIFEST SERVER_URL IMAGES_NPY   -> one JSON object on stdout

The project's tests compare the answers with the int8 runtime (tests/serving_kserve_test.py).
"""

import asyncio
import json
import sys

import kserve
import kubernetes.client
import numpy as np
import yaml

_PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def build(data, type_name: str):
  """`data` (parsed YAML) as the model `type_name` of kserve's or the Kubernetes client's
  generated models: each key must be one of the model's fields (`attribute_map`), each value of
  the field's type (`openapi_types`); the models' constructors check required fields and enums.

  kserve's own ApiClient cannot do this: it looks every class up in kserve.models, where the
  Kubernetes types of a custom predictor's containers (V1Container, ...) are not.
  """
  if type_name.lower().startswith("list["):  # kserve writes list[T], kubernetes List[T].
    assert isinstance(data, list), f"expected a list for {type_name}, got {data!r}"
    return [build(item, type_name[5:-1]) for item in data]
  if type_name.lower().startswith(("dict(", "dict[")):  # dict(str, T) or Dict[str, T].
    assert isinstance(data, dict), f"expected a mapping for {type_name}, got {data!r}"
    value_type = type_name[5:-1].split(", ", 1)[1]
    return {key: build(value, value_type) for key, value in data.items()}
  if type_name in _PRIMITIVES:
    assert isinstance(data, _PRIMITIVES[type_name]), f"expected {type_name}, got {data!r}"
    return data
  model = getattr(kserve.models, type_name, None) or getattr(kubernetes.client.models, type_name)
  assert isinstance(data, dict), f"expected a mapping for {type_name}, got {data!r}"
  fields = {key: attribute for attribute, key in model.attribute_map.items()}
  unknown = sorted(set(data) - set(fields))
  assert not unknown, f"{type_name} has no field {unknown}; it has {sorted(fields)}"
  return model(**{fields[key]: build(value, model.openapi_types[fields[key]])
                  for key, value in data.items()})


def read_manifest(path: str) -> kserve.V1beta1InferenceService:
  with open(path) as f:
    return build(yaml.safe_load(f), "V1beta1InferenceService")


def describe(isvc: kserve.V1beta1InferenceService) -> dict:
  container = isvc.spec.predictor.containers[0]
  return {"api_version": isvc.api_version, "kind": isvc.kind, "name": isvc.metadata.name,
          "container": container.name, "container_type": type(container).__name__,
          "args": container.args, "env": {e.name: e.value for e in container.env},
          "readiness": container.readiness_probe.http_get.path,
          "liveness": container.liveness_probe.http_get.path,
          "port": container.ports[0].container_port}


def inputs(images: np.ndarray, binary: bool) -> kserve.InferRequest:
  tensor = kserve.InferInput("images", list(images.shape), "UINT8")
  tensor.set_data_from_numpy(images, binary_data=binary)
  return kserve.InferRequest(model_name="mnist", infer_inputs=[tensor], request_id="kserve")


async def talk(url: str, images: np.ndarray) -> dict:
  answers = {}
  v2 = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", timeout=30))
  try:
    answers["server_ready"] = await v2.is_server_ready(url)
    answers["model_ready"] = await v2.is_model_ready(url, "mnist")
    for binary in (True, False):
      response = await v2.infer(url, inputs(images, binary), model_name="mnist")
      answers["v2_binary" if binary else "v2_json"] = {
          "id": response.id, "probabilities": response.outputs[0].as_numpy().tolist(),
          "classes": response.outputs[1].as_numpy().tolist()}
  finally:
    await v2.close()
  v1 = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v1", timeout=30))
  try:
    answers["v1"] = await v1.infer(url, {"instances": images[..., 0].tolist()},
                                   model_name="mnist")
  finally:
    await v1.close()
  return answers


def main() -> None:
  manifest, url, images_path = sys.argv[1:4]
  result = {"manifest": describe(read_manifest(manifest))}
  result.update(asyncio.run(talk(url, np.load(images_path))))
  print(json.dumps(result))


if __name__ == "__main__":
  main()
