"""`mnist-tfx compare`: does hand-built QAT pay off against Keras, tfmot and post-training
quantization? Measured, one module per job:

  cli.py         the subcommand's options (no TensorFlow until it runs);
  routes.py      the routes (network x trainer x way to int8) and the recipe they share;
  training.py    the Examples (MnistExampleGen's executor) and one seed of one route trained;
  measure.py     accuracy, int8 speed, size, cost and Edge TPU mapping of a trained route;
  qat_graphs.py  what each QAT does, read from the training graphs their trainers build;
  aggregate.py   mean and range over seeds, time to an accuracy;
  render.py      comparison.md and the plots;
  run.py         every route and seed in turn, then the results.
"""
