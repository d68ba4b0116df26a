# shellcheck shell=bash
# Sourced by scripts/test and scripts/up: installs Debian packages, idempotently.
#
#   apt_install PKG...    apt-get install the packages (sudo when not root)

apt_install() {
    [ $# -gt 0 ] || return 0
    printf '\n== installing %s\n' "$*"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    echo "wireshark-common wireshark-common/install-setuid boolean false" \
        | $sudo debconf-set-selections || true
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
