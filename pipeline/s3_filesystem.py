"""Importing this module gives the process s3:// in TensorFlow's file layer and keeps its exit code.

Imported by every process that touches an s3:// path (pipeline/object_store.py): `mnist-tfx`, the
Kubeflow entrypoint, and Beam's workers as a Beam plugin (`--beam_plugins=pipeline.s3_filesystem`).

1. tensorflow-io registers the s3:// filesystem with `tf.io.gfile` (so TFX's `fileio`) when it is
   imported; TensorFlow 2.16 has none of its own. Its AWS SDK for C++ reads the endpoint from
   S3_ENDPOINT, not from the standard AWS_ENDPOINT_URL that boto3 (Beam's s3://) reads: whichever
   of the two is set is copied to the other (`object_store.share_endpoint`), so one variable
   serves both libraries.
2. Any process that used tensorflow-io's S3 filesystem aborts at exit ("pure virtual method
   called", SIGABRT, exit status 134): a C++ static destructor of the AWS SDK runs after the SDK was
   shut down (sky-uk/kfp-operator patches the same abort in its TFX image). A task that did its
   work would be reported failed. Static destructors run inside libc's exit(), after Python has
   finished its own shutdown (atexit handlers, logging, flushing sys.stdout and sys.stderr), and
   libc runs exit handlers in the reverse order of their registration. So libc's _exit() is
   registered here with on_exit(), after tensorflow-io is loaded: it ends the process with the
   status exit() was given (sys.exit(n) gives n, an uncaught exception 1) before the destructors
   that abort, skipping only C-level clean-up registered earlier (static destructors, unflushed C
   stdio buffers). glibc only (on_exit), as in the project's images.
"""

import ctypes

import tensorflow_io  # noqa: F401  # pylint: disable=unused-import  # Registers s3:// at import.

from pipeline import object_store


def _end_with_exit_status() -> None:
  """Registers libc's _exit() to run at exit() before the exit handlers registered so far."""
  libc = ctypes.CDLL(None, use_errno=True)
  libc.on_exit.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
  if libc.on_exit(ctypes.cast(libc._exit, ctypes.c_void_p), None) != 0:  # pylint: disable=protected-access
    raise OSError(ctypes.get_errno(), "on_exit() failed")


object_store.share_endpoint()
_end_with_exit_status()
