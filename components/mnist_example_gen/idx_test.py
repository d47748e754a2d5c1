"""Every validation rule of idx.validate_input_dir, on real slices of MNIST."""

import gzip
import os
import shutil

import pytest

from components.mnist_example_gen import idx
from tests import mnist_slices


@pytest.fixture
def slice_dir(mnist_slice_dir, tmp_path) -> str:
  """A private copy of the MNIST slice that a test may damage."""
  return shutil.copytree(mnist_slice_dir, str(tmp_path / "mnist"))


def path_of(directory: str, name: str) -> str:
  return os.path.join(directory, name + idx.GZIP_SUFFIX)


def raw_copy(directory: str, name: str, keep_gz: bool = False) -> str:
  """Writes `name`.gz's uncompressed form beside it (then removes the .gz unless `keep_gz`)."""
  raw_path = os.path.join(directory, name)
  with gzip.open(path_of(directory, name)) as f, open(raw_path, "wb") as out:
    out.write(f.read())
  if not keep_gz:
    os.remove(path_of(directory, name))
  return raw_path


def test_valid_slice_gives_paths_and_counts(slice_dir):
  images, labels = idx.read_pair(path_of(slice_dir, idx.TRAIN_IMAGES),
                                 path_of(slice_dir, idx.TRAIN_LABELS))
  eval_images, _ = idx.read_pair(path_of(slice_dir, idx.EVAL_IMAGES),
                                 path_of(slice_dir, idx.EVAL_LABELS))
  full_images, full_labels = mnist_slices.load_full("train")
  assert (images == full_images[:len(images)]).all()
  assert (labels == full_labels[:len(labels)]).all()

  sources = idx.validate_input_dir(slice_dir)

  assert sources == {
      "train": idx.SplitSource(path_of(slice_dir, idx.TRAIN_IMAGES),
                               path_of(slice_dir, idx.TRAIN_LABELS), len(images)),
      "eval": idx.SplitSource(path_of(slice_dir, idx.EVAL_IMAGES),
                              path_of(slice_dir, idx.EVAL_LABELS), len(eval_images)),
  }


def test_uncompressed_files_are_read_like_gzipped_ones(slice_dir):
  expected = {split: idx.read_pair(*idx.split_paths(slice_dir, split)) for split in idx.SPLIT_FILES}
  for name in idx.STANDARD_FILES:
    with gzip.open(path_of(slice_dir, name)) as f, open(os.path.join(slice_dir, name), "wb") as out:
      out.write(f.read())
    os.remove(path_of(slice_dir, name))

  sources = idx.validate_input_dir(slice_dir)

  for split, (images, labels) in expected.items():
    assert sources[split].images_path == os.path.join(slice_dir, idx.SPLIT_FILES[split][0])
    raw_images, raw_labels = idx.read_pair(sources[split].images_path, sources[split].labels_path)
    assert (raw_images == images).all() and (raw_labels == labels).all()


def test_both_forms_with_the_same_data_are_accepted(slice_dir):
  """Files extracted beside their own downloads: same data, so the gzipped ones are used."""
  expected = idx.validate_input_dir(slice_dir)
  for name in idx.STANDARD_FILES:
    with gzip.open(path_of(slice_dir, name)) as f, open(os.path.join(slice_dir, name), "wb") as out:
      out.write(f.read())

  assert idx.validate_input_dir(slice_dir) == expected


def test_both_forms_with_different_data_name_both_files_and_change_nothing(slice_dir):
  mnist_slices.write_slice(str(slice_dir) + "_other", 50, 20)  # Another dataset, extracted here.
  for name in idx.STANDARD_FILES:
    with gzip.open(path_of(slice_dir + "_other", name)) as f, \
        open(os.path.join(slice_dir, name), "wb") as out:
      out.write(f.read())
  before = {name: os.path.getmtime(os.path.join(slice_dir, name)) for name in os.listdir(slice_dir)}

  with pytest.raises(idx.IdxFormatError) as raised:
    idx.validate_input_dir(slice_dir)

  message = str(raised.value)
  assert path_of(slice_dir, idx.TRAIN_IMAGES) in message
  assert os.path.join(slice_dir, idx.TRAIN_IMAGES) + " beside it" in message
  assert "remove the stale one" in message
  assert {name: os.path.getmtime(os.path.join(slice_dir, name))
          for name in os.listdir(slice_dir)} == before


def test_trailing_bytes_after_a_complete_gzip_stream_are_ignored_with_a_warning(slice_dir,
                                                                               caplog):
  """What some mail/FTP transfers do; `gzip -t`: "decompression OK, trailing garbage ignored"."""
  expected = idx.validate_input_dir(slice_dir)
  path = path_of(slice_dir, idx.EVAL_IMAGES)
  images = idx.read_images(path)
  with open(path, "ab") as f:
    f.write(b"\r\n")

  with caplog.at_level("WARNING"):
    assert idx.validate_input_dir(slice_dir) == expected

  assert (idx.read_images(path) == images).all()
  assert f"{path}: 2 bytes after the end of the gzip stream, ignored" in caplog.text


def test_concatenated_gzip_members_are_one_file(slice_dir):
  """`cat a.gz b.gz` is a valid gzip file holding a+b (RFC 1952 members), as gzip -d reads it."""
  path = path_of(slice_dir, idx.TRAIN_LABELS)
  data = idx.read_bytes(path)
  with open(path, "wb") as f:
    f.write(gzip.compress(data[:100]) + gzip.compress(data[100:]))

  assert idx.read_bytes(path) == data


def test_bundled_full_mnist_passes_its_sha256sums():
  assert idx.read_checksums(str(mnist_slices.FULL_MNIST_DIR)) is not None
  sources = idx.validate_input_dir(str(mnist_slices.FULL_MNIST_DIR))
  for split in idx.SPLIT_FILES:
    assert sources[split].num_examples == len(mnist_slices.load_full(split)[1])


# Each case damages a valid slice and names the file and the problem the error must report.
def remove_file(directory):
  os.remove(path_of(directory, idx.EVAL_LABELS))
  return idx.EVAL_LABELS, "file not found"


def truncate_gzip(directory):
  path = path_of(directory, idx.TRAIN_IMAGES)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:len(data) // 2])
  return idx.TRAIN_IMAGES, "truncated gzip data: the stream ends after"


def truncate_payload(directory):
  path = path_of(directory, idx.EVAL_IMAGES)
  data = idx.read_bytes(path)
  with open(path, "wb") as f:
    f.write(gzip.compress(data[:-1]))
  return idx.EVAL_IMAGES, "the file is truncated"


def truncate_raw_payload(directory):
  path = raw_copy(directory, idx.EVAL_LABELS)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "wb") as f:
    f.write(data[:-3])
  return idx.EVAL_LABELS, "the file is truncated: 3 bytes missing of the"


def append_to_raw_payload(directory):
  """A raw IDX file with 16 extra bytes: the header says how many records there are."""
  path = raw_copy(directory, idx.TRAIN_IMAGES)
  count = len(idx.read_images(path))
  with open(path, "ab") as f:
    f.write(bytes(16))
  return idx.TRAIN_IMAGES, f"16 bytes beyond the {count} records the header declares"


def append_inside_gzip(directory):
  """The same 16 extra bytes inside the gzip stream: the same diagnosis for the .gz file."""
  path = path_of(directory, idx.TRAIN_LABELS)
  data = idx.read_bytes(path)
  with open(path, "wb") as f:
    f.write(gzip.compress(data + b"\n" * 16))
  return idx.TRAIN_LABELS, f"16 bytes beyond the {len(data) - 8} records the header declares"


def append_truncated_gzip_member(directory):
  """A complete member followed by the start of a second one: truncated, not trailing garbage."""
  path = path_of(directory, idx.TRAIN_LABELS)
  with open(path, "rb") as f:
    data = f.read()
  with open(path, "ab") as f:
    f.write(data[:20])
  return idx.TRAIN_LABELS, "truncated gzip data"


def corrupt_gzip_stream(directory):
  path = path_of(directory, idx.EVAL_IMAGES)
  with open(path, "rb") as f:
    data = bytearray(f.read())
  data[len(data) // 2] ^= 0xFF
  with open(path, "wb") as f:
    f.write(bytes(data))
  return idx.EVAL_IMAGES, "corrupt gzip data"


def extract_other_data_beside_gz(directory):
  """Raw files of other data extracted beside the old downloads: which one is current?"""
  path = raw_copy(directory, idx.TRAIN_IMAGES, keep_gz=True)
  mnist_slices.flip_pixel(path)
  return idx.TRAIN_IMAGES, f"holds different data than {path} beside it"


def swap_magic(directory):
  images, _ = idx.read_pair(*idx.split_paths(directory, "train"))
  mnist_slices.write_idx(path_of(directory, idx.TRAIN_IMAGES), images, idx.LABELS_MAGIC)
  return idx.TRAIN_IMAGES, f"wrong magic number {idx.LABELS_MAGIC}, expected {idx.IMAGES_MAGIC}"


def drop_labels(directory):
  _, labels = idx.read_pair(*idx.split_paths(directory, "train"))
  mnist_slices.write_idx(path_of(directory, idx.TRAIN_LABELS), labels[:-1], idx.LABELS_MAGIC)
  return idx.TRAIN_IMAGES, f"{len(labels)} images but {len(labels) - 1} labels"


def crop_images(directory):
  images, _ = idx.read_pair(*idx.split_paths(directory, "eval"))
  mnist_slices.write_idx(path_of(directory, idx.EVAL_IMAGES), images[:, :, :27], idx.IMAGES_MAGIC)
  return idx.EVAL_IMAGES, "images are 28x27, expected 28x28"


def relabel_out_of_range(directory):
  _, labels = idx.read_pair(*idx.split_paths(directory, "train"))
  labels = labels.copy()
  labels[7] = 10
  mnist_slices.write_idx(path_of(directory, idx.TRAIN_LABELS), labels, idx.LABELS_MAGIC)
  return idx.TRAIN_LABELS, "label 10 at index 7 is out of range 0-9"


def empty_split(directory):
  images, labels = idx.read_pair(*idx.split_paths(directory, "eval"))
  mnist_slices.write_idx(path_of(directory, idx.EVAL_IMAGES), images[:0], idx.IMAGES_MAGIC)
  mnist_slices.write_idx(path_of(directory, idx.EVAL_LABELS), labels[:0], idx.LABELS_MAGIC)
  return idx.EVAL_IMAGES, "contains no images"


def alter_after_checksum(directory):
  mnist_slices.write_sha256sums(directory)
  mnist_slices.flip_pixel(path_of(directory, idx.EVAL_IMAGES))  # Only the checksum can tell.
  return idx.EVAL_IMAGES, "SHA-256 mismatch"


def remove_listed_file(directory):
  with open(os.path.join(directory, "README"), "w") as f:
    f.write("MNIST slice\n")
  mnist_slices.write_sha256sums(directory)
  os.remove(os.path.join(directory, "README"))
  return "README", "file listed in SHA256SUMS not found"


def leave_file_unlisted(directory):
  mnist_slices.write_sha256sums(directory)
  with open(os.path.join(directory, idx.CHECKSUMS_FILE)) as f:
    lines = [line for line in f if not line.rstrip().endswith(idx.TRAIN_LABELS + ".gz")]
  with open(os.path.join(directory, idx.CHECKSUMS_FILE), "w") as f:
    f.writelines(lines)
  return idx.TRAIN_LABELS, "not listed in SHA256SUMS"


def garble_sha256sums(directory):
  with open(os.path.join(directory, idx.CHECKSUMS_FILE), "w") as f:
    f.write("not a checksum line\n")
  return idx.CHECKSUMS_FILE, "line 1 is not in sha256sum format"


@pytest.mark.parametrize("damage", [
    remove_file, truncate_gzip, truncate_payload, truncate_raw_payload, append_to_raw_payload,
    append_inside_gzip, append_truncated_gzip_member, corrupt_gzip_stream,
    extract_other_data_beside_gz, swap_magic, drop_labels, crop_images,
    relabel_out_of_range, empty_split, alter_after_checksum, remove_listed_file,
    leave_file_unlisted, garble_sha256sums,
], ids=lambda damage: damage.__name__)
def test_bad_input_is_rejected_naming_file_and_problem(slice_dir, damage):
  bad_file, problem = damage(slice_dir)

  with pytest.raises(idx.IdxFormatError) as raised:
    idx.validate_input_dir(slice_dir)

  assert os.path.basename(raised.value.path).startswith(bad_file)
  assert problem in raised.value.problem
  assert raised.value.path in str(raised.value)
