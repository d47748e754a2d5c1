"""Where StatisticsGen's HTML report lives in its artifact (no TFX or TensorFlow import)."""

import posixpath

HTML_REPORT_NAME = "statistics.html"


def html_report_path(statistics_uri: str) -> str:
  """The HTML report of the ExampleStatistics artifact at `statistics_uri`."""
  return posixpath.join(statistics_uri, HTML_REPORT_NAME)
