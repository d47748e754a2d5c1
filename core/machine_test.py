"""The machine description every benchmark and the comparison print."""

import dataclasses
import os

from core import machine


def test_describes_this_machine():
  described = machine.describe()
  assert described.cores == os.cpu_count()
  assert described.cpu_model and set(described.isa_flags) <= set(machine.ISA_FLAGS)
  assert described.load_average is not None and len(described.load_average) == 3
  line = described.line()
  assert line.startswith(f"{described.cpu_model}, ISA ")
  assert f"{described.cores} cores" in line and f"Python {described.python}" in line
  assert described.to_dict()["line"] == line


def test_onednn_cap_is_read_from_the_environment_and_caps_the_peak(monkeypatch):
  monkeypatch.delenv(machine.ONEDNN_ISA_CAP_ENV, raising=False)
  uncapped = machine.describe()
  assert uncapped.onednn_max_cpu_isa is None and "no oneDNN ISA cap" in uncapped.line()
  monkeypatch.setenv(machine.ONEDNN_ISA_CAP_ENV, "AVX2")
  capped = machine.describe()
  assert "oneDNN capped at AVX2" in capped.line()
  if capped.cpu_mhz:
    avx2_peak = capped.cores * capped.cpu_mhz / 1000 * 2 * 8 * 2
    assert capped.peak_gflops == avx2_peak
    no_cap = dataclasses.replace(capped, onednn_max_cpu_isa=None)  # The same clock reading.
    assert no_cap.peak_gflops == (2 * avx2_peak if "avx512f" in capped.isa_flags else avx2_peak)
