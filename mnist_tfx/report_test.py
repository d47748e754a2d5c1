"""The run report, opened as a person opens it: in a real headless Chromium (Debian's chromium)."""

import contextlib
import io
import json
import os
import urllib.parse

from absl import logging as absl_logging
import pytest
from selenium import webdriver
from selenium.webdriver.chrome import service as chrome_service
from selenium.webdriver.common.by import By

from mnist_tfx import cli
from mnist_tfx import local_runner
from mnist_tfx import mlmd_queries
from mnist_tfx import summary
from pipeline import configs

pytestmark = pytest.mark.integration  # Runs the pipeline and a browser.

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def chromium():
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--window-size=1280,2400"):
    options.add_argument(argument)
  options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # Every network request.
  driver = webdriver.Chrome(service=chrome_service.Service(CHROMEDRIVER), options=options)
  try:
    yield driver
  finally:
    driver.quit()


def requested_urls(driver) -> list:
  urls = []
  for entry in driver.get_log("performance"):
    message = json.loads(entry["message"])["message"]
    if message["method"] == "Network.requestWillBeSent":
      urls.append(message["params"]["request"]["url"])
  return urls


def test_report_opens_with_the_verdict_plots_and_no_external_request(slice_run, chromium,
                                                                      tmp_path):
  report_path = os.path.join(slice_run.pipeline_root, "report.html")
  assert f"Run report:          {report_path}" in slice_run.stdout
  # `mnist-tfx report` writes it again from ML Metadata, as `run` did.
  os.remove(report_path)
  printed = io.StringIO()
  verbosity = absl_logging.get_verbosity()
  try:
    with contextlib.redirect_stdout(printed):
      assert cli.main(["report", "--pipeline-root", slice_run.pipeline_root]) == 0
  finally:
    absl_logging.set_verbosity(verbosity)  # main() sets it for the whole process.
  assert printed.getvalue().splitlines() == [report_path]
  artifacts = mlmd_queries.last_run_artifacts(
      local_runner.metadata_config(slice_run.pipeline_root), configs.PIPELINE_NAME)
  metrics = summary.read_evaluation(artifacts["ModelEvaluation"])

  chromium.get("file://" + urllib.parse.quote(report_path))
  chromium.save_screenshot(str(tmp_path / "report.png"))

  assert os.path.getsize(tmp_path / "report.png") > 10_000
  assert metrics.reason.lower() in chromium.find_element(By.ID, "verdict").text.lower()
  images = chromium.execute_script(
      "return Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.src.slice(0, 22)]);")
  alts = [alt for alt, _, _ in images]
  assert alts == ["Loss (cross-entropy)", "Accuracy", "Learning rate", "int8 confusion matrix"]
  for alt, natural_width, source in images:
    assert natural_width > 0, alt
    assert source == "data:image/png;base64,", alt
  page_text = chromium.find_element(By.TAG_NAME, "body").text
  assert f"{metrics.int8.accuracy:.4f}" in page_text
  assert summary.push_outcome(artifacts["PushedModel"]) in page_text
  assert "FULLY_CONNECTED" in page_text  # A row of the Edge TPU compatibility table.
  assert summary.tensorboard_command(slice_run.pipeline_root) in page_text
  # The statistics link leads to TFDV's page beside the artifacts.
  link = chromium.find_element(By.PARTIAL_LINK_TEXT, "TFDV statistics").get_attribute("href")
  assert link.startswith("file://") and os.path.exists(urllib.parse.unquote(link[len("file://"):]))
  # Self-contained: the page itself and data: images, nothing else.
  assert all(url.startswith("data:") or url == "file://" + urllib.parse.quote(report_path)
             for url in requested_urls(chromium)), requested_urls(chromium)
