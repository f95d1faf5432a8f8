#!/bin/sh
# Builds the Tokio echo baseline into $1 (default bin/tokio-echo) offline,
# from the crates Debian's librust-tokio-dev installs under
# /usr/share/cargo/registry. Everything it writes stays under bin/. When
# cargo or the crates are missing it says so and exits 0: the bench then
# skips the Tokio comparison with a note.
set -eu
out=${1:-bin/tokio-echo}
src=$(dirname "$0")
registry=${TOKIO_REGISTRY:-/usr/share/cargo/registry}
cargo=$(command -v /usr/bin/cargo || command -v cargo || true)
if [ -z "$cargo" ]; then
	echo "tokio-echo: cargo not found (apt-get install cargo librust-tokio-dev); Tokio baseline skipped"
	exit 0
fi
if ! ls -d "$registry"/tokio-1.* >/dev/null 2>&1; then
	echo "tokio-echo: no tokio crate in $registry (apt-get install librust-tokio-dev); Tokio baseline skipped"
	exit 0
fi
build=$(dirname "$out")/tokio-echo-build
mkdir -p "$build/cargo-home" "$build/src"
cp "$src/Cargo.toml" "$build/"
cp "$src/src/main.rs" "$build/src/"
# Debian's crates, not crates.io: a directory source, no network.
cat > "$build/cargo-home/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"

[net]
offline = true
CFG
if ! CARGO_HOME="$build/cargo-home" "$cargo" build --release --offline \
	--manifest-path "$build/Cargo.toml" --target-dir "$build/target" >"$build/build.log" 2>&1; then
	echo "tokio-echo: cargo build failed (see $build/build.log); Tokio baseline skipped"
	rm -f "$out"
	exit 0
fi
cp "$build/target/release/tokio-echo" "$out"
echo "tokio-echo: built $out"
