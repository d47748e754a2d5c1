"""The TFX Trainer entry point: Trainer(run_fn='trainer_module.run.run_fn', custom_config=...)."""

from tfx.components.trainer import fn_args_utils

from trainer_module import train


def run_fn(fn_args: fn_args_utils.FnArgs) -> None:
  """Trains the hand-built QAT network with fn_args.custom_config as hyperparameters.

  TrainArgs/EvalArgs need only their splits; a TrainArgs num_steps caps the total steps.
  """
  train.train_and_export(
      train_files=fn_args.train_files, eval_files=fn_args.eval_files,
      serving_model_dir=fn_args.serving_model_dir, model_run_dir=fn_args.model_run_dir,
      hparams=fn_args.custom_config, max_steps=fn_args.train_steps)
