"""Compiles `pipeline.pipeline.create_pipeline` into a Kubeflow Pipelines v2 job spec.

Every component runs in the image built from `kubeflow/Dockerfile` (this project installed from
the lock file), with TFX's v2 container entrypoint; Kubeflow brings its own ML Metadata, so no
connection config is passed. Beam-based components use the runner given in `beam_pipeline_args`
(e.g. Dataflow or Flink).
"""

import json
import os
from typing import Any, Dict, List, Optional

from tfx import v1 as tfx

from pipeline import configs
from pipeline import pipeline as pipeline_def

SPEC_FILE_NAME = "pipeline.json"


def compile_pipeline(output_dir: str, image: str, pipeline_root: str, data_dir: str,
                     beam_pipeline_args: Optional[List[str]] = None,
                     pipeline_name: str = configs.PIPELINE_NAME,
                     **pipeline_kwargs: Any) -> Dict[str, Any]:
  """Writes OUTPUT_DIR/pipeline.json and returns it as a dict.

  Args:
    output_dir: where the job spec goes.
    image: the container image every component runs in.
    pipeline_root, data_dir: paths the cluster can read and write (e.g. gs://...).
    beam_pipeline_args: Beam options for the Beam-based components.
    pipeline_name: the pipeline's name.
    **pipeline_kwargs: any other `create_pipeline` argument (training, blessing, push settings).
  """
  pipeline = pipeline_def.create_pipeline(
      pipeline_root=pipeline_root, data_dir=data_dir, pipeline_name=pipeline_name,
      beam_pipeline_args=beam_pipeline_args, **pipeline_kwargs)
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
      output_dir=output_dir, output_filename=SPEC_FILE_NAME)
  runner.run(pipeline)
  with open(os.path.join(output_dir, SPEC_FILE_NAME)) as f:
    return json.load(f)
