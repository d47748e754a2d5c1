"""What every payload file of the project shares: strict pydantic schemas, bytes out, checked in.

`evaluation_metrics` (metrics.json) and `push_manifest` (model.json) define their files as
`PayloadFile` subclasses; their writers call `to_json`, their readers `parse`. No TensorFlow.
"""

from typing import Any, ClassVar, Dict, Type, TypeVar

import pydantic

_File = TypeVar("_File", bound="PayloadFile")


class Schema(pydantic.BaseModel):
  """Strict: unknown keys are refused (a writer's typo fails its tests) and values are frozen."""
  model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PayloadFile(Schema):
  """A whole file; subclasses name it in DESCRIPTION (e.g. "evaluation")."""
  DESCRIPTION: ClassVar[str] = "payload file"

  def to_json(self) -> bytes:
    """The file's bytes (UTF-8 JSON, indented for people who open it)."""
    return self.model_dump_json(indent=2, by_alias=True).encode("utf-8")

  def to_dict(self) -> Dict[str, Any]:
    """The file's content as plain JSON types, keys as in the file."""
    return self.model_dump(mode="json", by_alias=True)

  @classmethod
  def parse(cls: Type[_File], content: bytes, source: str) -> _File:
    """Parses and checks the file's bytes.

    Raises:
      ValueError: naming `source` and every field that is missing or wrong, on one line.
    """
    try:
      return cls.model_validate_json(content)
    except pydantic.ValidationError as e:
      raise ValueError(f"{source} is not a valid {cls.DESCRIPTION} ({e.error_count()} "
                       f"problems): {problems(e)}") from None


def problems(error: pydantic.ValidationError) -> str:
  """Every problem of a failed validation, `field.path: message`, on one line."""
  return "; ".join(f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
                   for problem in error.errors())
