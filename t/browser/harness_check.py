"""The harness itself (t/66-browser-harness.t): Chromium reaches the test's real nginx, a
fetch from a page of that origin gets the CapabilityStatement, console errors are collected,
calls reach the .t file and come back, screenshots are written."""

import os

from harness import Browser, Tap

tap = Tap()
with Browser(tap) as b:
    b.get(tap.base_url + '/metadata')
    body = b.wait_css('body')
    tap.ok('"CapabilityStatement"' in body.text, 'Chromium shows the server\'s /metadata',
           body.text[:300])

    got = b.js_async("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {headers: {Accept: 'application/fhir+json'}})
          .then(r => r.json().then(j => done({status: r.status, type: j.resourceType})))
          .catch(e => done({error: String(e)}));""", tap.base_url + '/metadata')
    tap.is_(got, {'status': 200, 'type': 'CapabilityStatement'},
            'a fetch from the page reaches the real server')

    b.console_errors()  # drop what loading the page logged
    b.js("console.error('harness-check-marker')")
    errs = b.console_errors()
    tap.ok(any('harness-check-marker' in e for e in errs), 'console errors are collected', errs)
    tap.is_(b.console_errors(), [], '... each once')

    reply = tap.call('echo', {'x': [1, 'two']})
    tap.is_(reply, {'echoed': {'x': [1, 'two']}}, 'a call reaches the test file and returns')

    path = b.screenshot('harness-metadata')
    tap.ok(os.path.getsize(path) > 1000, 'screenshot written', path)
tap.done()
