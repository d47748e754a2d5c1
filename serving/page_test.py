"""The drawing page in a real headless Chromium (Selenium): draw digits, read the prediction.

The strokes are mouse drags made with Selenium's ActionChains on the canvas; the page sends the
drawing to :classify_image and shows the top class, ten probability bars, the model version and the
device. Screenshots are saved in the test's tmp_path.
"""

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

# Strokes in canvas pixels (280 x 280), each a list of points dragged through.
DIGIT_STROKES = {
    "1": [[(140, 40), (140, 100), (140, 160), (140, 240)]],
    "7": [[(70, 50), (140, 50), (210, 50), (180, 120), (150, 180), (130, 240)]],
}


@pytest.fixture(scope="module")
def browser():
  options = webdriver.ChromeOptions()
  options.binary_location = "/usr/bin/chromium"
  for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   "--window-size=900,700"):
    options.add_argument(argument)
  driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
  yield driver
  driver.quit()


def draw(browser, canvas, strokes):
  # Offsets are from the canvas' centre (Selenium 4); the canvas is shown at 280 x 280.
  half_width, half_height = canvas.size["width"] / 2, canvas.size["height"] / 2
  for stroke in strokes:
    actions = ActionChains(browser, duration=20)
    x, y = stroke[0]
    actions.move_to_element_with_offset(canvas, int(x - half_width), int(y - half_height))
    actions.click_and_hold()
    for next_x, next_y in stroke[1:]:
      actions.move_by_offset(int(next_x - x), int(next_y - y))
      x, y = next_x, next_y
    actions.release()
    actions.perform()


@pytest.mark.parametrize("digit", sorted(DIGIT_STROKES))
def test_drawn_digit_is_classified_on_the_page(serving_server, browser, digit, tmp_path):
  browser.get(serving_server.url + "/")
  wait = WebDriverWait(browser, 20)
  model = browser.find_element(By.ID, "model")
  wait.until(lambda _: model.get_attribute("data-version"))
  assert model.get_attribute("data-version") == "1"
  assert model.get_attribute("data-device") == "cpu"
  assert "Model version 1 on the CPU" in model.text
  canvas = browser.find_element(By.ID, "canvas")
  prediction = browser.find_element(By.ID, "prediction")
  draw(browser, canvas, DIGIT_STROKES[digit])
  # The final request (after the pen lifted) settles the prediction and the ten bars.
  wait.until(lambda _: prediction.text and len(
      browser.find_elements(By.CSS_SELECTOR, "#bars .probability")) == 10 and
      browser.execute_script("return !pending && !dirty;"))
  browser.save_screenshot(str(tmp_path / f"page_{digit}.png"))
  assert browser.find_element(By.ID, "error").text == ""
  assert prediction.text == digit
  top = browser.find_element(By.CSS_SELECTOR, "#bars .top.probability").text
  assert top.endswith("%") and float(top[:-1]) > 50
  probabilities = [float(cell.text[:-1]) for cell in
                   browser.find_elements(By.CSS_SELECTOR, "#bars .probability")]
  assert sum(probabilities) == pytest.approx(100, abs=3)
