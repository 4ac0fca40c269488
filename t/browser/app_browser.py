"""Browser (t/browser/harness.py) with what the app tests add: screenshots of page sections
(beyond the viewport) and downloads into a known directory."""

import base64
import os

from harness import Browser


class AppBrowser(Browser):
    def __init__(self, tap, **kw):
        super().__init__(tap, **kw)
        # Downloads land in <test dir>/downloads (wait_download).
        self.download_dir = os.path.join(
            os.path.dirname(tap.screenshot_dir.rstrip('/')) or '.', 'downloads')
        os.makedirs(self.download_dir, exist_ok=True)
        self.driver.execute_cdp_cmd('Browser.setDownloadBehavior', {
            'behavior': 'allow', 'downloadPath': self.download_dir})

    def wait_download(self, name, timeout=None):
        """The path of download_dir/name once it is complete (no .crdownload beside it)."""
        path = os.path.join(self.download_dir, name)

        def cond(_):
            return os.path.exists(path) and not os.path.exists(path + '.crdownload') and path
        return self.wait_until(cond, timeout, f'no download {name}')

    def screenshot(self, name, css=None):
        """As Browser.screenshot; with css, only the elements matching it (from the top of the
        first to the bottom of the last, beyond the viewport if need be)."""
        if not css:
            return super().screenshot(name)
        box = self.js("""
            const els = [...document.querySelectorAll(arguments[0])]
              .filter(e => e.getClientRects().length);
            if (!els.length) return null;
            const r0 = els[0].getBoundingClientRect();
            const r1 = els[els.length - 1].getBoundingClientRect();
            return {x: 0, y: r0.top + window.scrollY,
                    width: document.documentElement.scrollWidth, height: r1.bottom - r0.top};""",
                      css)
        if not box:
            raise RuntimeError(f'screenshot: nothing visible matches {css}')
        box['scale'] = 1
        shot = self.driver.execute_cdp_cmd('Page.captureScreenshot', {
            'format': 'png', 'clip': box, 'captureBeyondViewport': True})
        os.makedirs(self.tap.screenshot_dir, exist_ok=True)
        path = os.path.join(self.tap.screenshot_dir, name + '.png')
        with open(path, 'wb') as f:
            f.write(base64.b64decode(shot['data']))
        if self.tap.copy_dir:
            os.makedirs(self.tap.copy_dir, exist_ok=True)
            with open(os.path.join(self.tap.copy_dir, name + '.png'), 'wb') as f:
                f.write(base64.b64decode(shot['data']))
        return path
