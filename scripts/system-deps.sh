#!/usr/bin/env bash
# Debian packages that make the bot faster or testable; never fatal: the Python install already works.
# - libharfbuzz-subset0: WeasyPrint embeds subset fonts about 3x faster with it.
# - chromium: the sandbox's browser tests (tests/test_sandbox_browser.py) drive it through Playwright;
#   without it they are skipped (unless BILLING_REQUIRE_BROWSER is set). Playwright never downloads a browser.
set -u
missing=()
ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so.0' || missing+=(libharfbuzz-subset0)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "note: could not install ${missing[*]}; PDFs still render (more slowly), browser tests are skipped."
else
  echo "note: install ${missing[*]} (Debian/Ubuntu): faster PDF rendering; chromium runs the sandbox's browser tests."
fi
exit 0
