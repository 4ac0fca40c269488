"""The export app's other paths (t/68-export-app-import.t): an RS384 private JWK made by the
test is imported (and not kept), the _typeFilter builder narrows an all-patients export to
one Observation code, and the counts and the preview show exactly that."""

import json

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from app_browser import AppBrowser as Browser
from harness import Tap

tap = Tap()
with Browser(tap, height=1400) as b:
    b.get(tap.base_url + '/_app/')
    b.wait_css('#connect').click()
    b.wait_text('#server-banner', 'Connected to')

    k = tap.call('key')
    b.css('#key-import-box summary').click()
    area = b.wait_css('#key-import')
    area.click()
    # as pasted: set the value at once (typing 3 KB through chromedriver is slow)
    b.js("arguments[0].value = arguments[1];", area, json.dumps(k['jwk']))
    b.css('#key-import-button').click()
    b.wait_text('#key-status', 'Imported RS384 key')
    tap.is_(area.get_attribute('value'), '', 'the pasted private key is cleared from the page')
    pub = json.loads(b.css('#jwks').get_attribute('value'))['keys'][0]
    tap.ok(pub['kid'] == k['jwk']['kid'] and pub['n'] == k['jwk']['n'] and 'd' not in pub
           and 'p' not in pub, 'the public JWK Set shown is the key\'s public part, same kid', pub)
    stored = b.js_async("""
        const done = arguments[arguments.length - 1];
        const req = indexedDB.open('fhir-bulk-app', 1);
        req.onupgradeneeded = () => req.result.createObjectStore('keys');
        req.onsuccess = () => {
          const get = req.result.transaction('keys').objectStore('keys').get('client-key');
          get.onsuccess = () => done(get.result === undefined ? 'none' : 'stored');
        };""")
    tap.is_(stored, 'none', 'a key is not kept unless asked')

    b.css('#client-id').send_keys(k['client_id'])
    b.css('#authorize').click()
    b.wait_text('#token-status', 'Access token granted')
    tap.ok(True, 'RS384 assertion signed in the browser accepted')

    b.css('#level-patient').click()
    types = Select(b.css('#types'))
    for t in ('Observation', 'Patient'):
        types.select_by_value(t)
    b.js("document.getElementById('types').dispatchEvent(new Event('change'))")
    Select(b.css('#tf-type')).select_by_value('Observation')
    b.js("document.getElementById('tf-type').dispatchEvent(new Event('change'))")
    Select(b.css('#tf-param')).select_by_value('code')
    b.js("document.getElementById('tf-param').dispatchEvent(new Event('change'))")
    b.css('#tf-value').send_keys(k['code'])
    b.css('#tf-add').click()
    item = b.wait_css('#tf-list li code').text
    system, code = k['code'].split('|')
    tap.is_(item, f'Observation?code={system.replace(":", "%3A").replace("/", "%2F")}%7C{code}',
            'the builder writes the filter, its value encoded')
    kick = b.css('#kickoff-preview').text
    tap.ok('/Patient/$export?_type=Observation%2CPatient&_typeFilter=Observation%3Fcode%3D' in kick,
           'the kick-off carries it as _typeFilter', kick)
    b.screenshot('09-typefilter', '#kickoff-section')
    b.css('#kickoff').click()
    b.wait_text('#job-state', 'Complete', timeout=120)
    status_url = json.loads(b.js("return localStorage.getItem('fhirbulk.job')"))['statusUrl']
    b.wait_until(lambda d: b.css_all('#counts tbody tr'), message='no counts')
    shown = {tr.get_attribute('data-type'):
             int(tr.find_element(By.CSS_SELECTOR, 'td[data-count]').get_attribute('data-count'))
             for tr in b.css_all('#counts tbody tr')}
    manifest = tap.call('manifest', {'url': status_url})
    expected = {}
    for f in manifest['output']:
        expected[f['type']] = expected.get(f['type'], 0) + f['count']
    tap.is_(shown, expected, 'counts shown equal the manifest\'s')
    tap.ok('(signed file URLs)' in b.css('#manifest-summary').text,
           'the app sees requiresAccessToken: false', b.css('#manifest-summary').text)
    tap.ok(all('signature=' in f['url'] for f in manifest['output']), '... and signed URLs')
    tap.is_(shown.get('Observation'), k['expected_observations'],
            'Observation count: exactly those with the code (counted in the database)')

    b.css('#files tbody tr[data-type="Observation"] button.preview').click()
    b.wait_until(lambda d: b.css('#preview').get_attribute('data-type') == 'Observation'
                 and b.css_all('#preview tbody tr'), message='no preview')
    codes = {tr.find_elements(By.TAG_NAME, 'td')[1].text for tr in b.css_all('#preview tbody tr')}
    tap.is_(codes, {k['display']}, 'the preview shows only that code')
    b.screenshot('10-typefilter-preview', '#manifest-section, #preview-section')
    first = next(f for f in manifest['output'] if f['type'] == 'Patient')
    b.css('#files tbody tr[data-type="Patient"] button.download').click()
    path = b.try_wait(b.wait_download, first['url'].split('?')[0].rsplit('/', 1)[1])
    lines = open(path).read().splitlines() if path else []
    tap.is_(len(lines), first['count'], 'a file downloaded by its signed URL')
    tap.is_(b.console_errors(), [], 'no console errors')
tap.done()
