#!/usr/bin/env bash
# What the tests need beyond pip, from Debian's packages: OpenSSH's server, for the ssh://
# remote test (a throw-away sshd on 127.0.0.1), and Chromium with its WebDriver, for the
# browser test of the web pages (tests/test_ui.py drives /usr/bin/chromium through
# /usr/bin/chromedriver; nothing is downloaded at test time), and GnuPG and ssh-keygen, for
# the signed-commit tests (tests/test_signing.py: throw-away keys, git verify-commit). git and
# kubectl are expected on the machine (see README).
set -euo pipefail
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/ssh-keygen ] || missing+=(openssh-client)
[ -x /usr/bin/gpg ] && [ -x /usr/bin/gpg-agent ] || missing+=(gnupg)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && \
         $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi
