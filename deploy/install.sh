#!/usr/bin/env bash
# Installs logcast: the binary, the browser viewer, the systemd unit and the
# docs, under PREFIX (default /usr/local).
#
#   deploy/install.sh                      # build (release) and install to /usr/local
#   PREFIX=/opt/logcast deploy/install.sh  # elsewhere; the unit's paths follow
#   DESTDIR=/tmp/pkg deploy/install.sh     # stage into a packaging root
#   LOGCAST_BIN=path/to/logcast ...        # install this binary instead of building
#
# Layout: PREFIX/bin/logcast, PREFIX/share/logcast/web/, PREFIX/lib/systemd/system/logcast.{service,socket}
# and logcast-gateway.service
# (a directory systemd searches when PREFIX is /usr or /usr/local), PREFIX/share/doc/logcast/,
# and SYSCONFDIR/logcast/{config,gateway}.yaml (SYSCONFDIR: /etc for /usr and
# /usr/local, else PREFIX/etc), never overwritten: the examples also go to
# PREFIX/share/doc/logcast/. Also PREFIX/share/man/man1/logcast.1 (made from the binary
# by swift-argument-parser's generate-manual) and completions for bash, zsh and fish
# (from the binary's --generate-completion-script) under PREFIX/share/{bash-completion/
# completions,zsh/vendor-completions,fish/vendor_completions.d}.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${PREFIX:-/usr/local}"
case "$prefix" in
    /usr | /usr/local) sysconfdir="${SYSCONFDIR:-/etc}" ;;
    *) sysconfdir="${SYSCONFDIR:-$prefix/etc}" ;;
esac
destdir="${DESTDIR:-}"
binary="${LOGCAST_BIN:-}"
if [[ -z $binary ]]; then
    scripts/install-deps
    swift build -c release --product logcast
    binary=.build/release/logcast
fi
[[ -x $binary ]] || { echo "install.sh: $binary is not an executable" >&2; exit 1; }

root="$destdir$prefix"
install -d "$root/bin" "$root/share/logcast/web" "$root/lib/systemd/system" "$root/share/doc/logcast" "$destdir$sysconfdir/logcast"
install -m 0755 "$binary" "$root/bin/logcast"
cp -R web/. "$root/share/logcast/web/"
find "$root/share/logcast/web" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
sed -e "s|/usr/local/bin/logcast|$prefix/bin/logcast|g" \
    -e "s|/usr/local/share/logcast/web|$prefix/share/logcast/web|g" \
    -e "s|/usr/local/share/doc/logcast|$prefix/share/doc/logcast|g" \
    -e "s|/etc/logcast/|$sysconfdir/logcast/|g" \
    deploy/logcast.service > "$root/lib/systemd/system/logcast.service"
sed -e "s|/usr/local/bin/logcast|$prefix/bin/logcast|g" \
    -e "s|/usr/local/share/logcast/web|$prefix/share/logcast/web|g" \
    -e "s|/etc/logcast/|$sysconfdir/logcast/|g" \
    deploy/logcast-gateway.service > "$root/lib/systemd/system/logcast-gateway.service"
install -m 0644 deploy/logcast.socket "$root/lib/systemd/system/logcast.socket"
chmod 0644 "$root/lib/systemd/system/logcast.service" "$root/lib/systemd/system/logcast-gateway.service"
# systemd 253 and newer wait for the reload to finish (Type=notify-reload);
# LOGCAST_NOTIFY_RELOAD=yes|no overrides the version check (e.g. for a DESTDIR image).
notify_reload="${LOGCAST_NOTIFY_RELOAD:-}"
if [[ -z $notify_reload ]]; then
    systemd_version=$(systemctl --version 2>/dev/null | awk 'NR == 1 { print $2 }')
    notify_reload=no
    [[ $systemd_version =~ ^[0-9]+$ ]] && ((systemd_version >= 253)) && notify_reload=yes
fi
for unit in logcast.service logcast-gateway.service; do
    if [[ $notify_reload == yes ]]; then
        install -d "$root/lib/systemd/system/$unit.d"
        install -m 0644 deploy/notify-reload.conf "$root/lib/systemd/system/$unit.d/notify-reload.conf"
    else
        rm -f "$root/lib/systemd/system/$unit.d/notify-reload.conf"
    fi
done
# The man page, from the argument parser's own description of the binary. The generator is
# swift-argument-parser's generate-manual, built once from the package's checkout into .build/tools.
parser_checkout=.build/checkouts/swift-argument-parser
[[ -d $parser_checkout ]] || swift package resolve >/dev/null
swift build -q --package-path "$parser_checkout" --product generate-manual --scratch-path .build/tools
man_dir=$(mktemp -d)
trap 'rm -rf "$man_dir"' EXIT
manual_date=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%d)
.build/tools/debug/generate-manual "$binary" --date "$manual_date" --output-directory "$man_dir"
install -d "$root/share/man/man1"
install -m 0644 "$man_dir/logcast.1" "$root/share/man/man1/logcast.1"
# Shell completions, as the binary prints them.
install -d "$root/share/bash-completion/completions" "$root/share/zsh/vendor-completions" "$root/share/fish/vendor_completions.d"
"$binary" --generate-completion-script bash > "$root/share/bash-completion/completions/logcast"
"$binary" --generate-completion-script zsh > "$root/share/zsh/vendor-completions/_logcast"
"$binary" --generate-completion-script fish > "$root/share/fish/vendor_completions.d/logcast.fish"
chmod 0644 "$root/share/bash-completion/completions/logcast" "$root/share/zsh/vendor-completions/_logcast" \
    "$root/share/fish/vendor_completions.d/logcast.fish"
install -m 0644 README.md "$root/share/doc/logcast/README.md"
for config in config.yaml gateway.yaml; do
    install -m 0644 "deploy/$config" "$root/share/doc/logcast/$config"
    if [[ ! -e "$destdir$sysconfdir/logcast/$config" ]]; then
        install -m 0644 "deploy/$config" "$destdir$sysconfdir/logcast/$config"
    else
        echo "kept the existing $destdir$sysconfdir/logcast/$config (the example is in $prefix/share/doc/logcast/)"
    fi
done

echo "installed logcast under $root"
if [[ -z $destdir && $(id -u) -eq 0 ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    echo "next: systemctl enable --now logcast   (edit sources with: systemctl edit logcast)"
fi
