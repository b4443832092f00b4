"""The draw-a-digit page in a real headless Chromium (Debian's, driven by Selenium and
chromedriver; nothing is downloaded): digits from the MNIST test set are drawn as pointer-event
strokes, and the page must show the right labels."""

import shutil
import tempfile

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.by import By
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from support import ROOT, load_test_images

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The first test image of each digit: ten drawings, one per class.
DRAWINGS = 10
# Where the screenshot goes (a test artefact; README.md shows a committed copy).
SCREENSHOT = ROOT / "target" / "browser" / "page.png"
# Canvas pixels per MNIST pixel (the canvas is 280×280).
SCALE = 10
INK = 96


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="spinfer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # This machine has no outside network: without the background-networking flags Chromium
    # keeps trying Google's hosts.
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=900,820"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(browser, server):
    browser.get(server.url + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def strokes(image: np.ndarray):
    """The ink of a 28×28 image as horizontal strokes: one per run of dark pixels in a row, in
    canvas pixels."""
    for y, row in enumerate(image):
        x = 0
        while x < 28:
            if row[x] >= INK:
                start = x
                while x < 28 and row[x] >= INK:
                    x += 1
                yield (start * SCALE + SCALE // 2, y * SCALE + SCALE // 2), ((x - 1) * SCALE + SCALE // 2, y * SCALE + SCALE // 2)
            x += 1


def draw(browser, image: np.ndarray, pointer_kind=interaction.POINTER_MOUSE):
    """Draws `image` on the canvas with real pointer input (press, move, release per stroke)."""
    canvas = browser.find_element(By.ID, "pad")
    width = canvas.size["width"]
    # Selenium offsets are from the element's centre, in CSS pixels.
    to_css = lambda p: (round((p[0] - 140) * width / 280), round((p[1] - 140) * width / 280))
    actions = ActionBuilder(browser, mouse=PointerInput(pointer_kind, f"{pointer_kind}-drawer"), duration=0)
    for start, end in strokes(image):
        actions.pointer_action.move_to(canvas, *to_css(start)).pointer_down()
        actions.pointer_action.move_to(canvas, *to_css(end)).pointer_up()
    actions.perform()


def result(browser, timeout=30):
    """Waits for the answer to the latest drawing and returns the result section's text."""
    section = browser.find_element(By.ID, "result")
    WebDriverWait(browser, timeout).until(lambda d: section.get_attribute("data-state") in ("done", "error"))
    return section


def first_of_each_digit():
    images, labels = load_test_images(200)
    firsts = {}
    for index, label in enumerate(labels):
        firsts.setdefault(int(label), index)
    return [(images[firsts[d]], d) for d in sorted(firsts)][:DRAWINGS]


def test_drawn_digits_are_recognised(browser, server):
    open_page(browser, server)
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#model option")]
    assert "mnist-compact" in options and len(options) >= 2, options
    assert browser.find_element(By.ID, "model").get_attribute("value") == "mnist-compact"

    shown = []
    for image, label in first_of_each_digit():
        browser.find_element(By.ID, "clear").click()
        draw(browser, image, interaction.POINTER_PEN if label % 2 else interaction.POINTER_MOUSE)
        section = result(browser)
        assert section.get_attribute("data-state") == "done", browser.find_element(By.ID, "error").text
        predicted = int(browser.find_element(By.ID, "label").text)
        bars = [float(m.get_attribute("value")) for m in browser.find_elements(By.CSS_SELECTOR, "#bars meter")]
        assert len(bars) == 10 and abs(sum(bars) - 1) < 1e-3 and int(np.argmax(bars)) == predicted
        assert "infer" in browser.find_element(By.ID, "timing").text
        shown.append((label, predicted))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
    right = sum(label == predicted for label, predicted in shown)
    print(f"{right} of {len(shown)} drawn digits recognised: {shown}")
    assert right >= DRAWINGS - 2, f"drawn → shown: {shown}"


def test_api_errors_are_shown_readably(browser, server):
    open_page(browser, server)
    # A model the server does not have: the API's 404 JSON error must reach the page as text.
    browser.execute_script("const s = document.getElementById('model'); s.append(new Option('no-such-model', 'no-such-model', true, true));")
    image, _ = first_of_each_digit()[3]
    draw(browser, image)
    result(browser)
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("Error 404:") and "no-such-model" in error, error


def test_the_page_fits_a_phone_and_is_labelled(browser, server):
    browser.set_window_size(390, 844)
    try:
        open_page(browser, server)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow} px wider than a phone"
        canvas = browser.find_element(By.ID, "pad")
        assert canvas.get_attribute("aria-label")
        assert browser.find_element(By.CSS_SELECTOR, "label[for=model]").text == "Model"
        # Keyboard order: the picker, the drawing area, then the buttons.
        order = browser.execute_script("""
            const focusable = [...document.querySelectorAll('select, canvas[tabindex], button')];
            return focusable.map(e => e.id);""")
        assert order == ["model", "pad", "predict", "clear"], order
    finally:
        browser.set_window_size(900, 820)
