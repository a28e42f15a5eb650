# Sourced by demo.sh and test.sh: installs what a fresh Debian machine lacks.
# Rust comes from the machine's rustup toolchain; everything else from Debian.
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "error: cargo not found; install Rust with rustup first" >&2; exit 1; }
need=()
command -v jq >/dev/null || need+=(jq)
command -v cc >/dev/null || need+=(build-essential)
# Hyperscan for portcullis-detect's `vectorscan` prefilter backend (the hyperscan crate links
# libhs). Debian's libvectorscan-dev would do too, but it conflicts with libhyperscan5, which
# the Suricata package we compare against depends on.
[ -e /usr/include/hs/hs.h ] || need+=(libhyperscan-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
# The XDP program (kernels/xdp/) is C compiled by clang against libbpf's headers; without
# them portcullis-dataplane builds but its XDP API says "not built".
command -v clang >/dev/null || need+=(clang)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
# The namespace tests of the live dataplane: ip netns, and ping across the veth.
command -v ip >/dev/null || need+=(iproute2)
command -v ping >/dev/null || need+=(iputils-ping)
# Hosts whose traffic crosses the tests' userspace bridge turn veth checksum offload off.
command -v ethtool >/dev/null || need+=(ethtool)
# libpcap for portcullis-dataplane's `pcap` feature (live capture fallback; on by default).
[ -e /usr/include/pcap/pcap.h ] || need+=(libpcap-dev)
# The nftables enforcer (portcullis-policy's `nftables` feature) links libnftnl and libmnl;
# the namespace tests read the kernel's table back with the `nft` command.
[ -e /usr/include/libnftnl/set.h ] || need+=(libnftnl-dev)
[ -e /usr/include/libmnl/libmnl.h ] || need+=(libmnl-dev)
command -v nft >/dev/null || need+=(nftables)
# The console's end-to-end test drives `portcullis console` in a tmux session.
command -v tmux >/dev/null || need+=(tmux)
# The Redis EVE output's tests start their own redis-server on a free localhost port.
command -v redis-server >/dev/null || need+=(redis-server)
# scripts/cuda-tools.sh puts NVIDIA's NVRTC and ptxas wheels in a venv (the kernel_nvrtc test).
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "error: missing ${need[*]}; run as root or install them" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
