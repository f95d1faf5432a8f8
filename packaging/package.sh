#!/bin/sh
# Builds the .deb and .rpm packages into dist/ (make package runs this):
#   dist/sluice_<version>_<arch>.deb and dist/sluice-<version>-1.<arch>.rpm
# for amd64 and arm64 (PKG_ARCHES), with nfpm pinned in packaging/tools.
#
# Environment (the Makefile passes the first three):
#   VERSION     git describe of the tree, stamped into the binary
#   COMMIT      short commit, stamped into the binary
#   LDFLAGS     the go build -ldflags that stamp them
#   PKG_ARCHES  GOARCH values to build (default: amd64 arm64)
#   PKG_MAINTAINER  the packages' Maintainer field
set -eu
cd "$(dirname "$0")/.."

: "${VERSION:=$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
: "${COMMIT:=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
: "${LDFLAGS:=-s -w -X github.com/sluice-dev/sluice/pkg/version.Version=$VERSION -X github.com/sluice-dev/sluice/pkg/version.Commit=$COMMIT}"
: "${PKG_ARCHES:=amd64 arm64}"
: "${PKG_MAINTAINER:=sluice maintainers <maintainers@sluice.dev>}"
# Reproducible: file times, man page dates and gzip headers come from the
# commit, not from the clock.
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH PKG_MAINTAINER

# pkg_version turns git describe into a version both dpkg and rpm order
# correctly: v1.2.3 -> 1.2.3; v1.2.3-rc.1 -> 1.2.3~rc.1 (before 1.2.3);
# v1.2.3-4-gabc1234 -> 1.2.3+4.gabc1234 (after it); -dirty -> +...dirty;
# no tag, only a commit (abc1234) -> 0.0.0+<commit count $2>.gabc1234, so
# that untagged builds still sort by history.
pkg_version() {
	v=${1#v}
	meta=
	case $v in *-dirty)
		v=${v%-dirty}
		meta=dirty
		;;
	esac
	# git describe's -<commits since the tag>-g<commit> suffix
	since=$(printf '%s\n' "$v" | sed -n 's/^\(.*\)-\([0-9][0-9]*\)-g\([0-9a-f][0-9a-f]*\)$/\2.g\3/p')
	if [ -n "$since" ]; then
		v=$(printf '%s\n' "$v" | sed 's/-[0-9][0-9]*-g[0-9a-f][0-9a-f]*$//')
		meta=$since${meta:+.$meta}
	fi
	case $v in
	[0-9]*.[0-9]*)
		base=$(printf '%s\n' "$v" | sed 's/^\([0-9][0-9.]*[0-9]\).*/\1/')
		pre=${v#"$base"}
		pre=${pre#[-.~_]}
		;;
	*) # no tag: a bare commit, or "dev" outside git
		base=0.0.0
		pre=
		case $v in [0-9a-f][0-9a-f][0-9a-f][0-9a-f]*) v=${2:+$2.}g$v ;; esac
		meta=$v${meta:+.$meta}
		;;
	esac
	out=$base${pre:+~$pre}${meta:++$meta}
	# Anything else git or a tag could hold is not allowed in either format.
	printf '%s\n' "$out" | sed 's/[^A-Za-z0-9.+~]/./g'
}

# changelog writes a Debian changelog entry for this build: the commits
# since the last tag (at most 50), one a line.
changelog() {
	since=$(git describe --tags --abbrev=0 2>/dev/null || true)
	printf 'sluice (%s) unstable; urgency=medium\n\n' "$PKG_VERSION"
	git log --no-merges --max-count=50 --format='%s' ${since:+"$since..HEAD"} 2>/dev/null |
		awk '{ # "  * subject", wrapped at 76 columns
			line = "  *"
			for (i = 1; i <= NF; i++) {
				if (length(line) + 1 + length($i) > 76) { print line; line = "   " }
				line = line " " $i
			}
			print line
		}'
	printf '  * Built from %s.\n' "$VERSION"
	printf '\n -- %s  %s\n' "$PKG_MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
}

if [ "${1:-}" = --version-of ]; then # packaging/package.sh --version-of DESCRIBE [COUNT]
	pkg_version "$2" "${3:-}"
	exit 0
fi

PKG_VERSION=$(pkg_version "$VERSION" "$(git rev-list --count HEAD 2>/dev/null || true)")
BUILD=dist/build
export PKG_VERSION BUILD
rm -rf "$BUILD" dist/sluice_*.deb dist/sluice-*.rpm
mkdir -p "$BUILD" bin

echo "==> changelog from git"
changelog >"$BUILD/changelog"
gzip -9n "$BUILD/changelog"

echo "==> nfpm (packaging/tools, pinned)"
go build -C packaging/tools -o ../../bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm

echo "==> man pages and completions from the CLI"
go build -trimpath -ldflags "$LDFLAGS" -o "$BUILD/sluice-host" ./cmd/sluice
"$BUILD/sluice-host" gen-docs "$BUILD/docs"
gzip -9n "$BUILD"/docs/man1/*.1

for arch in $PKG_ARCHES; do
	echo "==> sluice $VERSION for linux/$arch"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch \
		go build -trimpath -ldflags "$LDFLAGS" -o "$BUILD/linux_$arch/sluice" ./cmd/sluice
	for fmt in deb rpm; do
		GOARCH=$arch bin/nfpm package --config packaging/nfpm.yaml --packager "$fmt" --target dist/
	done
done
ls -l dist/*.deb dist/*.rpm
