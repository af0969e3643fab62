#!/usr/bin/env bash
# Debian packages that make the bot faster or testable; never fatal: the Python install already works.
# - libharfbuzz-subset0: WeasyPrint embeds subset fonts about 3x faster with it.
set -u
missing=()
ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so.0' || missing+=(libharfbuzz-subset0)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
    || echo "note: could not install ${missing[*]}; PDFs still render, more slowly."
else
  echo "note: install ${missing[*]} (Debian/Ubuntu) for ~3x faster PDF rendering."
fi
exit 0
