"""The machine a measurement ran on: the one description beside every figure of the project.

`mnist-tfx compare` (comparison.md/json) and every script in benchmarks/ state the machine with
`describe()` so that BENCHMARKS.md and the README quote figures with the same facts: the CPU model
and the ISA flags that decide TensorFlow's kernels (AVX2, AVX-512), the cores, whether oneDNN was
capped below the CPU's ISA (`ONEDNN_MAX_CPU_ISA`, the project's way to judge speed on the slow
kind of machine), the load average when measured (figures taken under load are lower bounds),
and the Python and TensorFlow versions. Linux's /proc/cpuinfo is read when present; elsewhere the
fields fall back to `platform`. No TensorFlow import (its version comes from the installed
package's metadata).
"""

import dataclasses
import importlib.metadata
import os
import platform
import re
from typing import Any, Dict, Optional, Tuple

# The ISA flags that change which kernels oneDNN and XNNPACK pick on x86.
ISA_FLAGS = ("avx2", "avx512f")
ONEDNN_ISA_CAP_ENV = "ONEDNN_MAX_CPU_ISA"
_CPUINFO = "/proc/cpuinfo"


@dataclasses.dataclass(frozen=True)
class Machine:
  """What a figure was measured on; `line()` is how it is printed."""
  cpu_model: str
  isa_flags: Tuple[str, ...]  # Those of ISA_FLAGS the CPU reports, sorted.
  cores: int  # os.cpu_count(): logical CPUs.
  cpu_mhz: Optional[float]  # The first core's current clock, as /proc/cpuinfo reports it.
  onednn_max_cpu_isa: Optional[str]  # The oneDNN ISA cap in force (ONEDNN_MAX_CPU_ISA), if any.
  load_average: Optional[Tuple[float, float, float]]  # 1, 5 and 15 minutes.
  python: str
  tensorflow: Optional[str]  # The installed tensorflow package's version.

  def line(self) -> str:
    """E.g. 'Intel(R) Xeon(R) Processor, ISA avx2 avx512f, 2 cores, oneDNN capped at AVX2,
    load 1.52 0.91 0.37, Python 3.10.13, TensorFlow 2.16.2'."""
    cap = (f"oneDNN capped at {self.onednn_max_cpu_isa}" if self.onednn_max_cpu_isa else
           "no oneDNN ISA cap")
    load = (" ".join(f"{value:.2f}" for value in self.load_average) if self.load_average else
            "unknown")
    return (f"{self.cpu_model}, ISA {' '.join(self.isa_flags) or 'without avx2/avx512f'}, "
            f"{self.cores} cores, {cap}, load {load}, Python {self.python}, "
            f"TensorFlow {self.tensorflow or 'not installed'}")

  @property
  def peak_gflops(self) -> Optional[float]:
    """Float32 peak: cores x GHz x 2 FMA units x SIMD lanes (8 AVX2, 16 AVX-512 unless oneDNN
    is capped below it) x 2 FLOP per FMA; None without a clock."""
    if not self.cpu_mhz:
      return None
    avx512 = "avx512f" in self.isa_flags and (self.onednn_max_cpu_isa or "").upper() not in (
        "AVX2", "AVX", "SSE41")
    return self.cores * self.cpu_mhz / 1000 * 2 * (16 if avx512 else 8) * 2

  def to_dict(self) -> Dict[str, Any]:
    return {**dataclasses.asdict(self), "line": self.line()}


def _cpuinfo() -> str:
  try:
    with open(_CPUINFO) as f:
      return f.read()
  except OSError:
    return ""


def load_average() -> Optional[Tuple[float, float, float]]:
  """The 1, 5 and 15-minute load averages, or None where the OS has none."""
  try:
    one, five, fifteen = os.getloadavg()
  except OSError:
    return None
  return round(one, 2), round(five, 2), round(fifteen, 2)


def describe() -> Machine:
  """This machine now (the load average is read at the call)."""
  cpuinfo = _cpuinfo()
  model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
  mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)$", cpuinfo, re.MULTILINE)
  flags = set(re.findall(rf"\b({'|'.join(ISA_FLAGS)})\b", cpuinfo))
  try:
    tensorflow: Optional[str] = importlib.metadata.version("tensorflow")
  except importlib.metadata.PackageNotFoundError:
    tensorflow = None
  return Machine(
      cpu_model=model.group(1).strip() if model else (platform.processor() or platform.machine()),
      isa_flags=tuple(sorted(flags)), cores=os.cpu_count() or 1,
      cpu_mhz=float(mhz.group(1)) if mhz else None,
      onednn_max_cpu_isa=os.environ.get(ONEDNN_ISA_CAP_ENV) or None,
      load_average=load_average(), python=platform.python_version(), tensorflow=tensorflow)
