"""Debian's chromium, headless, driven by selenium through chromedriver
(both installed by `make setup`): what the web view's tests open pages
with."""
import os
import time

import pytest

CHROMIUM, DRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'


def browser(tmp):
    """Headless chromium, no network of its own (every flag that would
    reach out is off), trusting nothing but ignoring the lab CA's
    certificate warnings; console messages kept."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.fail('chromium and chromium-driver are missing: sudo make '
                    'setup installs them')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                 '--disable-quic', '--no-first-run',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--ignore-certificate-errors', '--window-size=1400,900',
                 f'--user-data-dir={tmp}'):
        opts.add_argument(flag)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def wait(drv, script, timeout, step=0.05):
    """Seconds until the page's `script` returns something true; fails,
    naming the script, when it does not within `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if drv.execute_script(script):
            return time.monotonic() - t0
        time.sleep(step)
    pytest.fail(f'the page never answered {script!r} within {timeout} s')
