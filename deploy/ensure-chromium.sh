#!/bin/sh
# Make sure Debian's Chromium exists at /usr/bin/chromium: the browser tests (tests/test_ui_*.py)
# drive it through Playwright with executable_path, since no browser is downloaded at run time.
exec "$(dirname "$0")/ensure-apt-package.sh" /usr/bin/chromium chromium
