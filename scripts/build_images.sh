#!/usr/bin/env bash
# `make images`: builds serving/Dockerfile and kubeflow/Dockerfile from the checkout with the first
# container builder that works here: docker (its daemon answers), podman, or buildah.
#
#   scripts/build_images.sh [serving] [kubeflow]         (default: both)
#
# Environment (all optional; `make images VAR=value` passes them):
#   ENGINE=docker|podman|buildah  the builder (default: the first that works, in that order)
#   TAG=latest                    the images are mnist-edgetpu-serving:TAG and mnist-edgetpu-tfx:TAG
#   SERVING_IMAGE, KUBEFLOW_IMAGE repository names (e.g. REGISTRY/mnist-edgetpu-tfx to push)
#   BASE_IMAGE                    the Dockerfiles' base (default python:3.10-slim), e.g. the
#                                 stand-in localhost/python-standin:3.10-slim (tests/python_standin.sh)
#   EDGETPU_COMPILER=install|skip the Kubeflow image with or without Coral's edgetpu_compiler
#   CA_BUNDLE=FILE                behind a TLS-intercepting proxy: its CA bundle, mounted into the
#                                 downloading RUN steps as the build secret `ca-bundle` (never in a layer)
#   BUILD_FLAGS                   extra flags for the builder's build command
#   BUILDAH_ISOLATION             buildah's own setting; default chroot here (works without cgroups
#                                 delegation, e.g. inside CI containers)
# Prints each built image's name and ID on stdout ("NAME ID"); the builder's output goes to stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TAG=${TAG:-latest}
declare -A DOCKERFILE=([serving]=serving/Dockerfile [kubeflow]=kubeflow/Dockerfile)
declare -A NAME=([serving]=${SERVING_IMAGE:-mnist-edgetpu-serving}
                 [kubeflow]=${KUBEFLOW_IMAGE:-mnist-edgetpu-tfx})
IMAGES=("$@")
[[ ${#IMAGES[@]} -gt 0 ]] || IMAGES=(serving kubeflow)
log() { printf '[images] %s\n' "$*" >&2; }
for image in "${IMAGES[@]}"; do
  [[ -n ${DOCKERFILE[$image]:-} ]] || { log "unknown image '$image' (serving, kubeflow)"; exit 2; }
done

detect_engine() {
  # A docker client without a reachable daemon (or podman without a working service) is not enough.
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then echo docker
  elif command -v podman >/dev/null && timeout 20 podman info >/dev/null 2>&1; then echo podman
  elif command -v buildah >/dev/null; then echo buildah
  else return 1
  fi
}
ENGINE=${ENGINE:-$(detect_engine)} || {
  log "no container builder: install docker, podman or buildah (apt-get install buildah)"; exit 1; }

flags=()
[[ -n ${BASE_IMAGE:-} ]] && flags+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -n ${CA_BUNDLE:-} ]] && flags+=(--secret "id=ca-bundle,src=$CA_BUNDLE")
image_id() {
  if [[ $ENGINE == buildah ]]; then buildah inspect --type image --format '{{.FromImageID}}' "$1"
  else "$ENGINE" image inspect --format '{{.Id}}' "$1"
  fi
}
case $ENGINE in
  docker) export DOCKER_BUILDKIT=1; build=(docker build) ;;  # BuildKit: build secrets, stage skipping
  podman) build=(podman build --layers) ;;
  buildah)
    export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
    build=(buildah build --layers --force-rm) ;;
  *) log "unknown ENGINE=$ENGINE (docker, podman, buildah)"; exit 2 ;;
esac
# shellcheck disable=SC2206  # BUILD_FLAGS is a list of flags
flags+=(${BUILD_FLAGS:-})

for image in "${IMAGES[@]}"; do
  ref=${NAME[$image]}:$TAG
  args=("${flags[@]}" -f "$ROOT/${DOCKERFILE[$image]}" -t "$ref")
  if [[ $image == kubeflow ]]; then  # x86-64 only: Coral ships edgetpu_compiler for x86-64
    args+=(--platform linux/amd64)
    [[ -n ${EDGETPU_COMPILER:-} ]] && args+=(--build-arg "EDGETPU_COMPILER=$EDGETPU_COMPILER")
  fi
  log "$ENGINE: ${build[*]} ${args[*]} $ROOT"
  started=$SECONDS
  "${build[@]}" "${args[@]}" "$ROOT" >&2
  log "$ref built in $((SECONDS - started)) s"
  echo "$ref $(image_id "$ref")"
done
