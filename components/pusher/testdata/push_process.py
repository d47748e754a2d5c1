"""A separate process that publishes one version with versioned_push, for the interruption and
concurrency tests. The real `fileio.rename` is wrapped with a pause point; the push itself is the
production code.

  push_process.py DEST MODEL_FILE hang
      writes the version's files, prints RENAMING and sleeps where it would rename (the test
      SIGKILLs it there).
  push_process.py DEST MODEL_FILE barrier DIR N
      waits at the rename until N processes have reached theirs (so all of them race for the same
      version number), renames, and prints {"version": ..., "rename_calls": ...}.
"""

import json
import os
import sys
import time

from tfx.dsl.io import fileio

from components.pusher import versioned_push


def main() -> None:
  destination, model_file, mode = sys.argv[1:4]
  real_rename = fileio.rename
  rename_calls = 0

  def paused_rename(src, dst, overwrite=False):
    nonlocal rename_calls
    rename_calls += 1
    if mode == "hang":
      print("RENAMING", src, flush=True)
      time.sleep(3600)
    if rename_calls == 1:
      barrier_dir, parties = sys.argv[4], int(sys.argv[5])
      open(os.path.join(barrier_dir, str(os.getpid())), "w").close()
      deadline = time.monotonic() + 120
      while len(os.listdir(barrier_dir)) < parties and time.monotonic() < deadline:
        time.sleep(0.01)
    return real_rename(src, dst, overwrite=overwrite)

  fileio.rename = paused_rename
  with open(model_file, "rb") as f:
    content = f.read()
  version, _ = versioned_push.publish_version(
      destination, {"model.tflite": content, "writer.txt": str(os.getpid()).encode()},
      "model.json", lambda v: json.dumps({"version": v, "pid": os.getpid()}).encode())
  print(json.dumps({"version": version, "rename_calls": rename_calls}), flush=True)


if __name__ == "__main__":
  main()
