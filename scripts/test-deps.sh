#!/usr/bin/env bash
# What the tests need beyond pip: OpenSSH's server, for the ssh:// remote test (a throw-away
# sshd on 127.0.0.1). git and kubectl are expected on the machine (see README).
set -euo pipefail
if [ ! -x /usr/sbin/sshd ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q --no-install-recommends openssh-server >/dev/null \
    || { $sudo apt-get update -q >/dev/null && \
         $sudo apt-get install -y -q --no-install-recommends openssh-server >/dev/null; }
fi
