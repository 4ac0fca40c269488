"""The export app (app/, served at [base]/_app/) in headless Chromium against the real stack
of t/67-export-app.t: connect, generate a key in the browser and have the test register its
public JWK Set, get a token, export a Group end to end, compare the per-type counts the page
shows with the manifest the test reads itself, preview and download a file, then kick off a
second export, reload the page (the export is resumed from localStorage, the key from
IndexedDB) and cancel it."""

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from app_browser import AppBrowser as Browser
from harness import Tap

tap = Tap()
TYPES = ['Condition', 'Encounter', 'Observation', 'Patient']


def counts_shown(b):
    return {tr.get_attribute('data-type'): int(tr.find_element(By.CSS_SELECTOR, 'td[data-count]')
                                              .get_attribute('data-count'))
            for tr in b.css_all('#counts tbody tr')}


with Browser(tap, height=1400) as b:
    # --- 1. the page, its headers' effect, its form labels -------------------------------
    b.get(tap.base_url + '/_app/')
    base = b.wait_css('#base-url')
    tap.is_(base.get_attribute('value'), tap.base_url, 'the base URL defaults to the app\'s server')
    unlabelled = b.js("""return [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
        .map(e => e.id || e.name);""")
    tap.is_(unlabelled, [], 'every form control has a label')
    b.console_errors()
    b.js("const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1';"
         "document.body.append(s);")
    tap.ok(b.js('return window.inlineRan') is None, 'an inline script does not run (CSP)')
    tap.ok(any('Content Security Policy' in e for e in b.console_errors()), '... and CSP says so')

    # keyboard: focus the URL field, Enter submits the form
    base.click()
    base.send_keys(Keys.ENTER)
    b.wait_text('#server-banner', 'Connected to')
    info = b.wait_css('#server-info').text
    tap.ok('ngx_fhir_bulk' in info and '/auth/token' in info,
           'connected: CapabilityStatement and smart-configuration read (Enter submits)', info)
    tap.ok(len(b.css_all('#types option')) > 100, 'the types list comes from the CapabilityStatement')
    b.screenshot('01-connected', 'header, #connect-section')

    # --- 2. a key made in the browser, registered by the test -----------------------------
    b.css('#key-keep').click()
    Select(b.css('#key-alg')).select_by_value('ES384')
    b.css('#key-generate').click()
    b.wait_text('#key-status', 'kept in this browser')
    jwks = json.loads(b.css('#jwks').get_attribute('value'))
    key = jwks['keys'][0]
    tap.ok(key.get('kty') == 'EC' and key.get('crv') == 'P-384' and 'd' not in key
           and key.get('kid'), 'a P-384 public JWK Set, no private member', key)
    exported = b.js_async("""
        const done = arguments[arguments.length - 1];
        const req = indexedDB.open('fhir-bulk-app', 1);
        req.onsuccess = () => {
          const get = req.result.transaction('keys').objectStore('keys').get('client-key');
          get.onsuccess = () => crypto.subtle.exportKey('jwk', get.result.privateKey)
            .then(() => done('exported'), (e) => done(get.result.privateKey.extractable + ' ' + e.name));
        };
        req.onerror = () => done('no db');""")
    tap.is_(exported, 'false InvalidAccessError',
            'the stored private key is a non-extractable CryptoKey in IndexedDB')
    client_id = tap.call('register', {'jwks': jwks})['client_id']
    b.css('#client-id').send_keys(client_id)
    b.css('#authorize').click()
    b.wait_text('#token-status', 'Access token granted')
    tap.ok(True, 'the token endpoint granted a token for the browser-signed ES384 assertion')
    b.screenshot('02-authorized', '#connect-section, #auth-section')

    # --- 3. a Group export ----------------------------------------------------------------
    b.css('#level-group').click()
    b.css('#group-search-name').send_keys('browser')
    b.css('#group-search').click()
    b.wait_text('#group-status', 'found')
    Select(b.css('#group-select')).select_by_value('browser-cohort')
    types = Select(b.css('#types'))
    for t in TYPES:
        types.select_by_value(t)
    b.js("document.getElementById('types').dispatchEvent(new Event('change'))")
    kick = b.css('#kickoff-preview').text
    tap.ok('/Group/browser-cohort/$export?' in kick and '_type=Condition%2CEncounter%2CObservation%2CPatient' in kick
           and 'allowPartialManifests=true' in kick, 'the kick-off URL shown', kick)
    b.screenshot('03-compose', '#kickoff-section')
    b.css('#kickoff').click()
    b.wait_text('#job-state', 'Complete', timeout=120)
    status_url = json.loads(b.js("return localStorage.getItem('fhirbulk.job')"))['statusUrl']
    b.wait_until(lambda d: counts_shown(b), message='no counts')
    shown = counts_shown(b)
    manifest = tap.call('manifest', {'url': status_url})
    expected = {}
    for f in manifest['output']:
        expected[f['type']] = expected.get(f['type'], 0) + f['count']
    tap.is_(shown, expected, 'per-type counts shown equal the manifest\'s')
    tap.ok(set(TYPES) <= set(shown), 'every requested type has resources', shown)
    tap.is_(len(b.css_all('#files tbody tr')), len(manifest['output']), 'one row per file')
    b.wait_until(lambda d: all(c.text for c in b.css_all('#counts td.size')), message='no sizes')
    b.screenshot('04-manifest', '#job-section, #manifest-section')

    # --- 4. preview and download ----------------------------------------------------------
    def preview(t):
        b.css(f'#files tbody tr[data-type="{t}"] button.preview').click()
        b.wait_until(lambda d: b.css('#preview').get_attribute('data-type') == t
                     and b.css_all('#preview tbody tr'), message=f'no {t} preview')
        heads = [th.text for th in b.css_all('#preview thead th')]
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, 'td')]
                for tr in b.css_all('#preview tbody tr')]
        return heads, rows

    heads, rows = preview('Patient')
    tap.is_(heads, ['id', 'Name', 'Gender', 'Birth date', 'Last updated'], 'Patient preview columns')
    tap.ok(rows and all(r[2] in ('male', 'female', 'other', 'unknown') and r[1] for r in rows),
           'Patient rows have names and genders', rows[:3])
    tap.ok(set(r[0] for r in rows) <= set(manifest['patients']), '... the Group\'s patients',
           [r[0] for r in rows])
    b.screenshot('05-preview-patient', '#preview-section')
    heads, rows = preview('Observation')
    tap.is_(heads[:4], ['id', 'Code', 'Value', 'Date'], 'Observation preview columns')
    tap.ok(len(rows) == min(20, expected['Observation']) and all(r[1] and r[3] for r in rows),
           'Observation rows (at most 20 lines read) with code and date', rows[:3])
    b.screenshot('06-preview-observation', '#preview-section')

    first = next(f for f in manifest['output'] if f['type'] == 'Patient')
    name = first['url'].rsplit('/', 1)[1]
    b.css(f'#files tbody tr[data-type="Patient"] button.download').click()
    path = b.try_wait(b.wait_download, name)
    lines = open(path).read().splitlines() if path else []
    tap.is_(len(lines), first['count'], 'the downloaded file has the manifest\'s count of lines')

    # --- 5. a second export: followed across a reload, then cancelled ----------------------
    tap.call('stop_worker')   # so that it stays in progress
    b.css('#level-system').click()
    types.deselect_all()
    types.select_by_value('Patient')
    b.css('#kickoff').click()
    b.wait_text('#job-state', 'In progress')
    second = json.loads(b.js("return localStorage.getItem('fhirbulk.job')"))['statusUrl']
    tap.ok(second != status_url, 'a second export kicked off')
    b.driver.refresh()
    b.wait_text('#token-status', 'Access token granted')
    b.wait_text('#job-state', 'In progress')
    tap.is_(b.css('#job-url').text, 'Status URL: ' + second,
            'after a reload the app follows the export again (stored key, stored status URL)')
    b.screenshot('07-resumed', '#job-section')
    b.css('#cancel').click()
    b.wait_text('#job-state', 'Cancelled')
    tap.is_(tap.call('poll', {'url': second})['status'], 404, 'the server deleted the export')
    tap.ok(b.js("return localStorage.getItem('fhirbulk.job')") is None, '... and the app forgot it')
    b.screenshot('08-cancelled', '#job-section')

    tap.is_(b.console_errors(), [], 'no console errors')
tap.done()
