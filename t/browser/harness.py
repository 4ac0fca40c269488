"""Browser tests for the t/ suite: headless Debian Chromium driven by chromedriver through
Debian's python3-selenium, against the real stack a t/*.t file started (FhirBulk::Test).

A t/*.t file runs a script of t/browser/ with FhirBulk::Browser::run_script; the script
reports TAP-like lines that the Perl side turns into Test::More results, and may call back
into the Perl side (register a client, read a manifest with the test's own token, ...):

    from harness import Browser, Tap
    tap = Tap()                                   # reads the environment set by run_script
    with Browser(tap) as b:
        b.get(tap.base_url + '/_app/')
        b.wait_css('#connect')                    # element present and visible
        tap.ok(cond, 'name', 'diagnostic if it fails')
        reply = tap.call('register', {'jwks': jwks})   # handler of the .t file, JSON both ways
        b.screenshot('01-connected')              # <screenshot dir>/01-connected.png
        tap.ok(not b.console_errors(), 'no console errors')
    tap.done()

Protocol on the script's stdout (everything else goes to stderr):
    ok <name> | not ok <name> then '# <diagnostic>' lines | # <note>
    call <name> <json>   -> the Perl side answers one JSON line on the script's stdin
    done                 -> the script finished (missing: the .t file fails)

Environment (set by run_script): FHIRBULK_BASE_URL (the FHIR base, http://127.0.0.1:PORT/fhir),
FHIRBULK_ORIGIN, FHIRBULK_SCREENSHOT_DIR (per test, under its temp dir), FHIRBULK_SCREENSHOTS
(optional, the user's: screenshots are copied there too, e.g. docs/screenshots),
FHIRBULK_BROWSER_TIMEOUT (seconds an element wait may take, default 30).
Standard library + selenium only.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get('FHIRBULK_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('FHIRBULK_CHROMEDRIVER', '/usr/bin/chromedriver')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Tap:
    """Results and calls to the Perl side (FhirBulk::Browser) over stdout/stdin."""

    def __init__(self):
        self.base_url = os.environ.get('FHIRBULK_BASE_URL', '')
        self.origin = os.environ.get('FHIRBULK_ORIGIN', '')
        self.screenshot_dir = os.environ.get('FHIRBULK_SCREENSHOT_DIR') or tempfile.mkdtemp()
        self.copy_dir = os.environ.get('FHIRBULK_SCREENSHOTS') or None
        self.timeout = float(os.environ.get('FHIRBULK_BROWSER_TIMEOUT', '30'))
        self.failed = 0
        self._out = sys.stdout
        # Anything else a library prints must not be taken for a result.
        sys.stdout = sys.stderr

    def _line(self, text):
        self._out.write(text + '\n')
        self._out.flush()

    def ok(self, cond, name, diag=None):
        name = ' '.join(str(name).split())
        self._line(('ok ' if cond else 'not ok ') + name)
        if not cond:
            self.failed += 1
            if diag is not None:
                for line in str(diag).splitlines() or ['']:
                    self._line('# ' + line)
        return bool(cond)

    def is_(self, got, expected, name):
        return self.ok(got == expected, name, f'got:      {got!r}\nexpected: {expected!r}')

    def note(self, text):
        for line in str(text).splitlines():
            self._line('# ' + line)

    def call(self, name, args=None):
        """Runs the .t file's handler NAME with ARGS (JSON); returns its JSON answer."""
        self._line(f'call {name} {json.dumps(args if args is not None else {})}')
        reply = sys.stdin.readline()
        if not reply:
            raise RuntimeError(f'call {name}: no answer from the test file')
        reply = json.loads(reply)
        if isinstance(reply, dict) and 'error' in reply and len(reply) == 1:
            raise RuntimeError(f'call {name}: {reply["error"]}')
        return reply

    def done(self):
        self._line('done')


class Browser:
    """Headless Chromium through chromedriver on a free port; closes both on exit."""

    def __init__(self, tap, width=1280, height=900):
        self.tap = tap
        self.profile = tempfile.mkdtemp(prefix='fhirbulk-chromium-')
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                    '--disable-gpu', '--no-first-run', '--disable-extensions',
                    '--disable-background-networking', '--disable-sync',
                    '--password-store=basic', f'--user-data-dir={self.profile}',
                    f'--window-size={width},{height}'):
            opts.add_argument(arg)
        opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
        self.service = Service(executable_path=CHROMEDRIVER, port=free_port(),
                               log_path=os.path.join(tap.screenshot_dir, 'chromedriver.log'))
        self.driver = webdriver.Chrome(service=self.service, options=opts)
        self.driver.set_page_load_timeout(tap.timeout)
        self.logs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass
        shutil.rmtree(self.profile, ignore_errors=True)

    # --- navigation and waits -------------------------------------------------------------

    def get(self, url):
        self.driver.get(url)

    def wait_until(self, cond, timeout=None, message=''):
        """Waits until cond(driver) is truthy; returns it (TimeoutException otherwise)."""
        return WebDriverWait(self.driver, timeout or self.tap.timeout, poll_frequency=0.1) \
            .until(cond, message)

    def wait_css(self, css, timeout=None):
        """The first element matching css once it is visible."""
        return self.wait_until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)),
                               timeout, f'no visible {css}')

    def wait_text(self, css, text, timeout=None):
        """Waits until the element's text contains text; returns the element."""
        def cond(d):
            for el in d.find_elements(By.CSS_SELECTOR, css):
                try:
                    if text in el.text:
                        return el
                except WebDriverException:
                    pass
            return False
        return self.wait_until(cond, timeout, f'{css} never contained {text!r}')

    def try_wait(self, fn, *args, **kw):
        """fn(*args) or None when it times out (for checks that report instead of dying)."""
        try:
            return fn(*args, **kw)
        except TimeoutException:
            return None

    def css(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def css_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script, *args):
        """execute_async_script: the script calls arguments[arguments.length - 1](result)."""
        return self.driver.execute_async_script(script, *args)

    # --- evidence -------------------------------------------------------------------------

    def screenshot(self, name):
        """Saves <screenshot dir>/<name>.png (and a copy in FHIRBULK_SCREENSHOTS); its path."""
        os.makedirs(self.tap.screenshot_dir, exist_ok=True)
        path = os.path.join(self.tap.screenshot_dir, name + '.png')
        self.driver.save_screenshot(path)
        if self.tap.copy_dir:
            os.makedirs(self.tap.copy_dir, exist_ok=True)
            shutil.copy(path, os.path.join(self.tap.copy_dir, name + '.png'))
        return path

    def console_errors(self, ignore=()):
        """SEVERE browser log entries since the last call, but those matching an ignore regex.

        Every entry read is kept in self.logs (chromedriver hands each out once)."""
        import re
        entries = self.driver.get_log('browser')
        self.logs.extend(entries)
        return [e['message'] for e in entries
                if e.get('level') == 'SEVERE'
                and not any(re.search(p, e.get('message', '')) for p in ignore)]
