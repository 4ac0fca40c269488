"""The operator console (t/69-console-browser.t): sign in with a PEM key, jobs in progress with
their progress bars, history, a cancel followed, a client disabled and enabled again, the audit
trail, the charts; no console errors; labels on every form control; screenshots."""

import os
import time

from harness import Browser, Tap
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

tap = Tap()
op_id = os.environ['CONSOLE_CLIENT_ID']
job_done = os.environ['CONSOLE_JOB_DONE']
job_waiting = os.environ['CONSOLE_JOB_WAITING']
alice = os.environ['CONSOLE_ALICE']


def row(b, table, attr, value):
    rows = b.css_all(f'#{table} tr[data-{attr}="{value}"]')
    return rows[0] if rows else None


def row_text(b, table, attr, value):
    """The row's text, '' when it is absent; tables are re-rendered, so rows go stale."""
    try:
        r = row(b, table, attr, value)
        return r.text if r else ''
    except StaleElementReferenceException:
        return ''


def row_button(b, table, attr, value):
    for _ in range(50):
        try:
            return row(b, table, attr, value).find_element(By.CSS_SELECTOR, 'button')
        except (StaleElementReferenceException, AttributeError):
            time.sleep(0.1)
    return None


with Browser(tap, width=1280, height=1000) as b:
    b.get(tap.base_url + '/_app/console/')
    b.wait_css('#signin-form')
    tap.ok(b.css('#console').get_attribute('hidden') is not None, 'the console is hidden until sign-in')
    unlabelled = b.js("""return [...document.querySelectorAll('input, select, textarea')]
                          .filter(e => !e.labels || e.labels.length === 0).map(e => e.id)""")
    tap.is_(unlabelled, [], 'every form control has a label')

    # a wrong key is refused with a message, not a crash
    b.css('#client-id').send_keys(op_id)
    b.css('#key-text').send_keys('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----')
    b.css('#sign-in').click()
    tap.ok(b.try_wait(b.wait_text, '#status', 'Sign-in failed'), 'a bad key: sign-in fails, said so')

    # sign in with the PEM from fhir-bulk client keygen, by keyboard
    b.css('#key-text').clear()
    b.js("document.getElementById('key-text').value = arguments[0]", os.environ['CONSOLE_KEY_PEM'])
    b.css('#kid').send_keys(os.environ['CONSOLE_KID'])
    b.css('#kid').send_keys(Keys.ENTER)
    who = b.try_wait(b.wait_text, '#who', 'Signed in as ' + op_id)
    tap.ok(who, 'signed in with the operator key (WebCrypto assertion)', b.css('#status').text)
    tap.ok('operator/*.read' in b.css('#who').text, 'the token carries the operator scopes',
           b.css('#who').text)

    # jobs in progress: the waiting export with its progress bar
    r = b.try_wait(b.wait_until, lambda d: row_text(b, 'jobs-table', 'job', job_waiting))
    tap.ok(r, 'the waiting export is listed in progress')
    tap.ok('alice analytics' in (r or ''), 'with its client\'s name', r)
    bar = b.js("""const p = document.querySelector(`#jobs-table tr[data-job="${arguments[0]}"] progress`);
                  return p && {max: p.max, value: p.value, label: p.getAttribute('aria-label')}""",
               job_waiting)
    tap.ok(bar and bar['max'] == 100, 'a progress bar', bar)
    tap.ok(bar and bar['label'], 'with an accessible name', bar)
    h = b.try_wait(b.wait_until,
                   lambda d: 'completed' in row_text(b, 'history-table', 'job', job_done))
    tap.ok(h, 'the completed export is in the history', row_text(b, 'history-table', 'job', job_done))

    # clients and the charts are there too
    tap.ok(b.try_wait(b.wait_until, lambda d: row(b, 'clients-table', 'client', alice)),
           'the clients are listed')
    charts = b.try_wait(b.wait_until, lambda d: len(d.find_elements(By.CSS_SELECTOR,
                                                                      'svg.chart')) == 3)
    tap.ok(charts, 'three charts are drawn')
    bars = b.css_all('#chart-exports rect.bar')
    tap.ok(len(bars) >= 1, 'the exports chart has a bar for today', len(bars))
    tap.ok(len(b.css_all('#chart-downloads rect.bar')) >= 1, 'the downloads chart has a bar')
    tap.ok(len(b.css_all('#chart-rps rect.bar')) >= 1, 'the resources/s chart has a bar')
    b.js('window.scrollTo(0, 0)')
    b.screenshot('console-overview')

    # a cancel, followed
    reply = tap.call('cancel', {})
    tap.is_(int(reply.get('status')), 202, 'the second export is cancelled (by its client)')
    b.css('#refresh').click()
    gone = b.try_wait(b.wait_until, lambda d: row(b, 'jobs-table', 'job', job_waiting) is None)
    tap.ok(gone is not None, 'it leaves the in-progress list')
    hc = b.try_wait(b.wait_until,
                    lambda d: 'cancelled' in row_text(b, 'history-table', 'job', job_waiting))
    tap.ok(hc, 'and shows as cancelled in the history')

    # disable a client, see it take effect, enable it again
    btn = row_button(b, 'clients-table', 'client', alice)
    tap.is_(btn.text, 'Disable', 'alice has a Disable button')
    btn.send_keys(Keys.ENTER)  # keyboard
    ok = b.try_wait(b.wait_until,
                    lambda d: 'disabled' in row_text(b, 'clients-table', 'client', alice))
    tap.ok(ok, 'the console shows alice disabled')
    tap.ok('disabled' in b.css('#status').text, 'and says so in the status line', b.css('#status').text)
    b.screenshot('console-clients')
    got = tap.call('alice_token', {})
    tap.is_((int(got.get('status')), got.get('error')), (400, 'invalid_client'),
            'a disabled client gets no token')
    op_btn = row_button(b, 'clients-table', 'client', op_id)
    tap.ok(op_btn and not op_btn.is_enabled(),
           'the operator client cannot be toggled from the console')

    # the audit trail shows it
    b.css('#audit-action').send_keys('client')
    b.css('#audit-target').send_keys(alice)
    b.css('#audit-search').click()
    ev = b.try_wait(b.wait_text, '#audit-table tbody', 'disable: disabled')
    tap.ok(ev, 'the audit search shows the disable', b.css('#audit-table').text[:500])

    row_button(b, 'clients-table', 'client', alice).click()
    ok = b.try_wait(b.wait_until, lambda d: 'Disable' in row_text(b, 'clients-table', 'client',
                                                                  alice))
    tap.ok(ok, 'alice is enabled again')
    got = tap.call('alice_token', {})
    tap.is_(int(got.get('status')), 200, 'and gets tokens again')
    b.css('#audit-search').click()
    tap.ok(b.try_wait(b.wait_text, '#audit-table tbody', 'enable: enabled'),
           'the audit search shows the enable')
    b.js("document.getElementById('audit-section').scrollIntoView()")
    b.screenshot('console-audit-charts')

    errs = b.console_errors()
    tap.is_(errs, [], 'no console errors (CSP violations included)')

    b.css('#sign-out').click()
    tap.ok(b.try_wait(b.wait_css, '#signin-form'), 'sign out shows the sign-in form again')
tap.done()
