#!/usr/bin/env bash
# Tests the packages end to end (make test-package; .ci/run calls it):
# builds them, checks what they hold (dpkg-deb, lintian, rpm), then
# installs the .deb on this machine, runs the installed sluice as user
# sluice on the installed config, echoes through it with socat, edits the
# config and reloads with SIGHUP, installs a newer version of the package
# while connections are open and upgrades the running sluice in place as
# postinst would (see "upgrade in place" below), stops it, purges the
# package and checks that nothing is left. Needs root, dpkg, rpm, lintian, socat and
# systemd-analyze; systemd need not be running. Takes about a minute with
# a warm Go build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() {
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}
ok() { printf '  ok: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root: this test installs and purges the .deb"
for tool in dpkg-deb lintian rpm socat systemd-analyze setpriv; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (.ci/run installs what is missing)"
done
# The test marks the packages it installs, so that a run killed before its
# cleanup (a CI timeout, a machine restart) does not block every later run:
# a package this test left behind is purged; any other sluice package is an
# operator's, and the test refuses to touch it, except under CI=true, where
# the machine belongs to the test.
marker=/var/tmp/sluice-test-package.installed
if dpkg-query -W -f '${Status}' sluice 2>/dev/null | grep -q 'installed\|config-files'; then
	if [ -e "$marker" ]; then
		printf 'note: purging the sluice package an interrupted run of this test left (%s)\n' "$marker"
	elif [ "${CI:-}" = true ]; then
		printf 'note: CI=true: purging the sluice package installed here before this run\n'
	else
		fail "a sluice package is installed here already; this test would purge it (dpkg --purge sluice first)"
	fi
	pkill -f '^/usr/bin/sluice ' 2>/dev/null || true
	dpkg --purge sluice >/dev/null
fi
rm -f "$marker"

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
	if [ -n "${new_pid:-}" ]; then kill "$new_pid" 2>/dev/null || true; fi
	if [ -n "${notify_pid:-}" ]; then kill "$notify_pid" 2>/dev/null || true; fi
	if dpkg-query -W sluice >/dev/null 2>&1; then dpkg --purge sluice >/dev/null 2>&1 || true; fi
	if ! dpkg-query -W sluice >/dev/null 2>&1; then rm -f "$marker"; fi
	rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- build
step "make package"
make --no-print-directory package
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
arch=$(dpkg --print-architecture)
shopt -s nullglob
debs=(dist/sluice_*_amd64.deb dist/sluice_*_arm64.deb)
rpms=(dist/sluice-*.x86_64.rpm dist/sluice-*.aarch64.rpm)
if [ ${#debs[@]} != 2 ] || [ ${#rpms[@]} != 2 ]; then
	fail "want 2 .deb and 2 .rpm in dist/, got: ${debs[*]} ${rpms[*]}"
fi
deb=$(echo dist/sluice_*_"$arch".deb)
ok "${debs[*]} ${rpms[*]}"

# ------------------------------------------------------------- contents
step "deb contents and conffiles"
want_files=(
	/usr/bin/sluice
	/etc/sluice/config.yaml
	/usr/share/doc/sluice/README.md
	/usr/share/doc/sluice/copyright
	/usr/share/doc/sluice/examples/config.example.yaml
	/usr/share/doc/sluice/examples/sluice.socket
	/usr/share/man/man1/sluice.1.gz
	/usr/share/man/man1/sluice-run.1.gz
	/usr/share/bash-completion/completions/sluice
	/usr/share/fish/vendor_completions.d/sluice.fish
)
for d in "${debs[@]}"; do
	listing=$(dpkg-deb -c "$d")
	for f in "${want_files[@]}" /lib/systemd/system/sluice.service /usr/share/zsh/vendor-completions/_sluice; do
		grep -q " \.$f\$" <<<"$listing" || fail "$d lacks $f"
	done
	conffiles=$(dpkg-deb --ctrl-tarfile "$d" | tar -xO ./conffiles)
	[ "$conffiles" = /etc/sluice/config.yaml ] || fail "$d conffiles: '$conffiles'"
done
[ "$(dpkg-deb -f "${debs[1]}" Architecture)" = arm64 ] || fail "${debs[1]} is not arm64"
ok "files, the unit in /lib/systemd/system, conffile /etc/sluice/config.yaml"

step "lintian (no errors)"
lintian --allow-root --fail-on error "${debs[@]}"
ok "lintian"

step "rpm contents and config files"
for r in "${rpms[@]}"; do
	listing=$(rpm -qpl "$r" 2>/dev/null)
	for f in "${want_files[@]}" /usr/lib/systemd/system/sluice.service /usr/share/zsh/site-functions/_sluice; do
		grep -qx "$f" <<<"$listing" || fail "$r lacks $f"
	done
	[ "$(rpm -qpc "$r" 2>/dev/null)" = /etc/sluice/config.yaml ] || fail "$r config files: $(rpm -qpc "$r")"
	# c = %config, n = noreplace
	rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$r" 2>/dev/null | grep -qx 'cn /etc/sluice/config.yaml' ||
		fail "$r: /etc/sluice/config.yaml is not %config(noreplace)"
done
[ "$(rpm -qp --qf '%{ARCH}' "${rpms[1]}" 2>/dev/null)" = aarch64 ] || fail "${rpms[1]} is not aarch64"
# Install into a scratch root (files only; the scriptlets need the target
# system) and erase: the package's own directories must go with it.
root="$work/rpmroot"
rpm_x86=$(echo dist/sluice-*.x86_64.rpm)
rpm --root "$root" --initdb 2>/dev/null
rpm --root "$root" -i --nodeps --noscripts --ignorearch "$rpm_x86" 2>/dev/null
[ -x "$root/usr/bin/sluice" ] || fail "rpm -i into a scratch root laid down no /usr/bin/sluice"
[ -x "$root/usr/lib/sluice/upgrade-in-place" ] || fail "rpm -i into a scratch root laid down no /usr/lib/sluice/upgrade-in-place"
rpm --root "$root" -e --noscripts sluice 2>/dev/null
left=$(find "$root" -not -type d -not -path "$root/root/.rpmdb/*" -not -path "$root/var/lib/rpm/*"; find "$root/etc/sluice" "$root/usr/share/doc/sluice" 2>/dev/null || true)
[ -z "$left" ] || fail "rpm -e left: $left"
for s in packaging/scripts/rpm/* packaging/scripts/deb/* packaging/upgrade-in-place; do sh -n "$s" || fail "$s: syntax"; done
if command -v shellcheck >/dev/null; then shellcheck -s sh packaging/scripts/rpm/* packaging/scripts/deb/* packaging/upgrade-in-place; fi
ok "rpm files, %config(noreplace), install and erase in a scratch root, scriptlets parse"

step "the unit: systemd-analyze security (exposure <= 2.0)"
systemd-analyze security --offline=yes --threshold=20 packaging/sluice.service | tail -1
# --threshold is on the 0-100 scale behind the 0.0-10.0 one shown.

# ------------------------------------------------------------- install
step "dpkg -i $deb"
snapshot() { { find /etc /usr /lib /var/lib/systemd /var/lib/dpkg/info /run/sluice -xdev 2>/dev/null || true; } | sort; }
snapshot >"$work/before"
touch "$marker"
dpkg -i "$deb"
getent passwd sluice >/dev/null || fail "no user sluice after install"
getent group sluice >/dev/null || fail "no group sluice after install"
[ "$(getent passwd sluice | cut -d: -f7)" = /usr/sbin/nologin ] || fail "user sluice has a login shell: $(getent passwd sluice)"
[ -e /nonexistent ] && fail "the user's home /nonexistent was created"
[ -L /etc/systemd/system/multi-user.target.wants/sluice.service ] || fail "sluice.service is not enabled"
ok "user and group sluice; sluice.service enabled"

step "systemd-analyze verify"
# Documentation=man:sluice(1) is checked too, where man is installed.
man_check=--man=yes
command -v man >/dev/null || man_check=--man=no
systemd-analyze verify "$man_check" /lib/systemd/system/sluice.service
systemd-analyze verify "$man_check" /usr/share/doc/sluice/examples/sluice.socket
ok "verify ($man_check): sluice.service, the example sluice.socket"

if [ -d /run/systemd/system ]; then
	step "systemd runs here: postinst started the service"
	for _ in $(seq 50); do systemctl is-active --quiet sluice && break; sleep 0.2; done
	systemctl is-active --quiet sluice || { systemctl status sluice --no-pager || true; fail "sluice.service is not active after install"; }
	[ "$(printf 'via systemd\n' | socat -t 5 - TCP:127.0.0.1:7000)" = "via systemd" ] || fail "no echo from the service"
	systemctl reload sluice || fail "systemctl reload sluice"
	systemctl is-active --quiet sluice || fail "sluice.service is not active after a reload"
	systemctl stop sluice
	ok "active, echoes, reloads; stopped for the tests below"
fi

step "sluice version"
out=$(/usr/bin/sluice version)
echo "  $out"
grep -qF "sluice $version " <<<"$out" || fail "sluice version does not show $version"

# ---------------------------------------------------- run as user sluice
step "run /usr/bin/sluice as user sluice on /etc/sluice/config.yaml"
cfg=/etc/sluice/config.yaml
as_sluice() { setpriv --reuid=sluice --regid=sluice --init-groups --no-new-privs --inh-caps=-all "$@"; }
as_sluice /usr/bin/sluice validate -c "$cfg"
# What RuntimeDirectory=sluice would create.
install -d -o sluice -g sluice -m 0755 /run/sluice

port_free() { ! socat -u OPEN:/dev/null "TCP:127.0.0.1:$1,connect-timeout=1" 2>/dev/null; }
free_port() {
	local p
	for p in $(seq "$1" "$(($1 + 200))"); do
		if port_free "$p"; then
			echo "$p"
			return
		fi
	done
	fail "no free port from $1"
}
port=7000
if ! port_free 7000; then
	# A shared machine: someone else's sluice may be on 7000.
	port=$(free_port 17000)
	sed -i "s/127\.0\.0\.1:7000/127.0.0.1:$port/" "$cfg"
	echo "  127.0.0.1:7000 is taken here; the test uses $port"
fi

# What systemd would do for a Type=notify unit: a notify socket the
# service may write to. The upgrade below reads MAINPID= from it.
notify_log="$work/notify.log"
: >"$notify_log"
# exec, so that $! is socat itself (run as sluice: the service writes to
# it), which the SIGTERM step and cleanup stop.
(exec setpriv --reuid=sluice --regid=sluice --init-groups --no-new-privs --inh-caps=-all \
	socat -u UNIX-RECV:/run/sluice/notify -) >>"$notify_log" &
notify_pid=$!
for _ in $(seq 50); do [ -S /run/sluice/notify ] && break; sleep 0.1; done

log="$work/sluice.log"
(cd / && NOTIFY_SOCKET=/run/sluice/notify exec setpriv --reuid=sluice --regid=sluice --init-groups --no-new-privs --inh-caps=-all \
	/usr/bin/sluice run -c "$cfg") 2>"$log" &
pid=$!
wait_log() { # wait_log PATTERN: a log line matching PATTERN, within 20s
	for _ in $(seq 100); do
		grep -q "$1" "$log" && return 0
		kill -0 "$pid" 2>/dev/null || fail "sluice exited; log:$(printf '\n'; cat "$log")"
		sleep 0.2
	done
	fail "no log line matching $1 within 20s; log:$(printf '\n'; cat "$log")"
}
wait_log '"@message":"sluice started"'
[ "$(ps -o user= -p "$pid")" = sluice ] || fail "sluice does not run as user sluice: $(ps -o user= -p "$pid")"
head -1 "$log" | grep -q '^{.*}$' || fail "the installed config does not log JSON: $(head -1 "$log")"
ok "running as sluice, JSON logs"

step "echo with socat"
[ "$(printf 'hello tcp\n' | socat -t 5 - "TCP:127.0.0.1:$port")" = "hello tcp" ] || fail "no TCP echo on $port"
[ "$(printf 'hello unix\n' | socat -t 5 - UNIX-CONNECT:/run/sluice/echo.sock)" = "hello unix" ] || fail "no echo on /run/sluice/echo.sock"
[ "$(stat -c '%U %G %a' /run/sluice/echo.sock)" = "sluice sluice 660" ] || fail "socket file: $(stat -c '%U %G %a' /run/sluice/echo.sock)"
ok "TCP 127.0.0.1:$port and /run/sluice/echo.sock (sluice:sluice 0660)"

step "edit the config, SIGHUP"
# A connection opened before the reload must live through it.
exec 3<>"/dev/tcp/127.0.0.1/$port"
port2=$(free_port $((port + 1)))
cat >>"$cfg" <<YAML

  - name: echo-added
    network: tcp
    address: 127.0.0.1:$port2
    chain:
      - handler: echo
YAML
kill -HUP "$pid"
wait_log '"@message":"config reloaded".*"added":"echo-added"'
[ "$(printf 'added\n' | socat -t 5 - "TCP:127.0.0.1:$port2")" = "added" ] || fail "the listener added by the reload does not echo"
printf 'kept\n' >&3
read -r -t 5 kept <&3 || fail "the connection opened before the reload was dropped"
[ "$kept" = kept ] || fail "the connection opened before the reload echoed '$kept'"
exec 3>&-
ok "echo-added on $port2 served; an open connection survived the reload"

step "dpkg -i again: idempotent scripts, the edited conffile kept"
dpkg -i "$deb" >/dev/null
grep -q echo-added "$cfg" || fail "reinstalling overwrote the edited /etc/sluice/config.yaml"
ok "conffile kept"

# ------------------------------------------------------ upgrade in place
# On upgrade the deb postinst (and rpm %post) run
# /usr/lib/sluice/upgrade-in-place when the service runs: SIGUSR2 to the
# unit's main pid through systemctl, then wait for systemd's MainPID to
# become the new process. systemd is not PID 1 here (postinst skips that
# part without /run/systemd/system), so the test installs the newer package
# and then runs that same script with a stand-in systemctl that answers
# from what the real one would know: the service's pid, and the last
# MAINPID= sluice sent to the notify socket above.
step "upgrade in place: dpkg -i a newer package under load, then upgrade-in-place as postinst runs it"
cp "$deb" "$work/"
VERSION=v999.0.0 PKG_ARCHES="$arch" packaging/package.sh >"$work/package-new.log" 2>&1 ||
	fail "building the newer package; log:$(printf '\n'; cat "$work/package-new.log")"
new_deb=$(echo dist/sluice_999.0.0_"$arch".deb)
[ -f "$new_deb" ] || fail "no $new_deb"
mkdir -p "$work/bin"
cat >"$work/bin/systemctl" <<SH
#!/bin/sh
# A stand-in for systemctl where systemd is not PID 1 (test-package.sh).
main() { p=\$(tr '\\n' ' ' <"$notify_log" | grep -o 'MAINPID=[0-9]*' | tail -1 | cut -d= -f2); echo "\${p:-$pid}"; }
case "\$*" in
"is-active --quiet sluice.service") kill -0 "\$(main)" 2>/dev/null ;;
"show --property MainPID --value sluice.service") main ;;
"kill --signal=USR2 --kill-whom=main sluice.service") kill -USR2 "\$(main)" ;;
*) echo "stand-in systemctl: not supported here: \$*" >&2; exit 1 ;;
esac
SH
chmod 755 "$work/bin/systemctl"

# Connections opened before the upgrade: TCP on fd 5, Unix through socat.
exec 5<>"/dev/tcp/127.0.0.1/$port"
mkfifo "$work/unix-in"
socat -t 30 - UNIX-CONNECT:/run/sluice/echo.sock <"$work/unix-in" >"$work/unix-out" &
unix_client=$!
exec 6>"$work/unix-in"
printf 'unix before\n' >&6
# New connections all along: every one must echo.
: >"$work/load-failed"
(
	while [ ! -e "$work/load-stop" ]; do
		[ "$(printf 'load\n' | socat -t 5 - "TCP:127.0.0.1:$port")" = load ] || echo tcp >>"$work/load-failed"
		[ "$(printf 'load\n' | socat -t 5 - UNIX-CONNECT:/run/sluice/echo.sock)" = load ] || echo unix >>"$work/load-failed"
	done
) &
load_pid=$!
sleep 0.5

dpkg -i "$new_deb" >/dev/null
[ "$(/usr/bin/sluice version | cut -d' ' -f2)" = v999.0.0 ] || fail "the newer package did not install /usr/bin/sluice v999.0.0"
PATH="$work/bin:$PATH" /usr/lib/sluice/upgrade-in-place || fail "upgrade-in-place failed; log:$(printf '\n'; cat "$log")"
new_pid=$(PATH="$work/bin:$PATH" systemctl show --property MainPID --value sluice.service)
[ "$new_pid" != "$pid" ] || fail "the main pid did not change"
wait_log '"@message":"sluice started".*"upgraded":true'
grep '"@message":"sluice started"' "$log" | grep '"upgraded":true' | grep -q '"version":"v999.0.0"' || fail "the new process is not v999.0.0"
[ "$(ps -o user= -p "$new_pid")" = sluice ] || fail "the new process does not run as user sluice"
sleep 0.5
touch "$work/load-stop"
wait "$load_pid"
[ -s "$work/load-failed" ] && fail "connections failed during the upgrade: $(sort "$work/load-failed" | uniq -c | tr '\n' ' ')"

printf 'tcp after\n' >&5
read -r -t 5 kept <&5 || fail "the TCP connection opened before the upgrade was dropped"
[ "$kept" = "tcp after" ] || fail "the TCP connection opened before the upgrade echoed '$kept'"
printf 'unix after\n' >&6
for _ in $(seq 50); do grep -q 'unix after' "$work/unix-out" && break; sleep 0.1; done
grep -q 'unix after' "$work/unix-out" || fail "the Unix connection opened before the upgrade was dropped: $(cat "$work/unix-out")"
[ "$(printf 'new\n' | socat -t 5 - "TCP:127.0.0.1:$port")" = new ] || fail "the new process does not echo on TCP"
[ "$(printf 'new\n' | socat -t 5 - UNIX-CONNECT:/run/sluice/echo.sock)" = new ] || fail "the new process does not echo on Unix"
[ "$(printf 'new\n' | socat -t 5 - "TCP:127.0.0.1:$port2")" = new ] || fail "the listener added by the reload is not served after the upgrade"
# The old process exits 0 once its connections are done.
exec 5>&- 6>&-
wait "$unix_client" || true
code=0
wait "$pid" || code=$?
pid=
[ "$code" = 0 ] || fail "the old sluice exited $code after the upgrade; log:$(printf '\n'; cat "$log")"
[ -S /run/sluice/echo.sock ] || fail "the old process's exit removed /run/sluice/echo.sock"
[ "$(printf 'still\n' | socat -t 5 - UNIX-CONNECT:/run/sluice/echo.sock)" = still ] || fail "no Unix echo once the old process exited"
ok "no failed connect, open TCP and Unix connections kept, pid $new_pid (v999.0.0) serves; the old one exited 0"

step "SIGTERM"
kill -TERM "$new_pid"
for _ in $(seq 150); do
	state=$(awk '{print $3}' "/proc/$new_pid/stat" 2>/dev/null || true)
	[ -z "$state" ] || [ "$state" = Z ] && break
	sleep 0.2
done
[ -z "$state" ] || [ "$state" = Z ] || fail "sluice (pid $new_pid) still runs 30s after SIGTERM"
new_pid=
[ "$(grep -c '"@message":"shutdown finished"' "$log")" = 2 ] || fail "no clean shutdown of the new process; log:$(printf '\n'; cat "$log")"
[ -e /run/sluice/echo.sock ] && fail "sluice left /run/sluice/echo.sock behind"
kill "$notify_pid" 2>/dev/null || true
notify_pid=
ok "drained and exited, socket file removed"

# --------------------------------------------------------------- purge
step "dpkg --purge sluice"
dpkg --purge sluice
for f in /usr/bin/sluice /usr/lib/sluice /lib/systemd/system/sluice.service /etc/sluice /usr/share/doc/sluice \
	/etc/systemd/system/multi-user.target.wants/sluice.service /run/sluice; do
	[ -e "$f" ] || [ -L "$f" ] && fail "left behind: $f"
done
getent passwd sluice >/dev/null && fail "user sluice left behind"
getent group sluice >/dev/null && fail "group sluice left behind"
snapshot >"$work/after"
# Paths added since before the install: anything of sluice's fails the
# test; anything else is shown (on a shared machine, someone else may have
# installed something meanwhile).
comm -13 "$work/before" "$work/after" >"$work/added"
if grep -i sluice "$work/added"; then fail "the purge left the paths above"; fi
if [ -s "$work/added" ]; then
	echo "  note: paths added meanwhile, not sluice's:"
	sed 's/^/    /' "$work/added"
fi
ok "nothing left: binary, unit, /etc/sluice, docs, enablement, user, group"

step "rpm %pre creates the user idempotently"
sh packaging/scripts/rpm/pre 1
sh packaging/scripts/rpm/pre 2
getent passwd sluice >/dev/null || fail "rpm %pre created no user"
userdel sluice
getent group sluice >/dev/null && groupdel sluice
ok "rpm %pre"

printf '\nPASS: packages built, checked, installed, served, reloaded, upgraded in place and purged\n'
