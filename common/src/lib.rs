//! The bottom of the Portcullis crate graph: plain `Copy` types that every other crate
//! shares, and nothing else. It owns the packet timestamp ([`Timestamp`]), the flow key
//! ([`FlowKey`], a 5-tuple plus VLAN ids, canonicalised so both directions of a conversation
//! map to one key), the per-packet summary that crosses from the decoder to the flow table and
//! detection ([`PacketMeta`]), and the decoder anomaly vocabulary ([`Anomaly`], named as
//! Suricata's `decoder.event.*` counters). It does no I/O, allocates nothing and depends on no
//! other Portcullis crate. Types that will be shared with the XDP program or the GPU kernels
//! are `#[repr(C)]` and live here too.

mod anomaly;
mod key;
mod meta;
mod time;
pub mod xdp;

pub use anomaly::Anomaly;
pub use key::{FlowKey, IpFamily};
pub use meta::{Direction, PacketMeta, TcpFlags};
pub use time::Timestamp;

/// Where tests, benchmarks and tools find the shared corpora (captures, rules, Suricata's
/// test suite): `$PORTCULLIS_DATA`, else `../shared/data` beside the workspace. The one
/// setting for them all; callers say so and skip when it does not exist.
pub fn shared_data_dir() -> std::path::PathBuf {
    match std::env::var_os("PORTCULLIS_DATA") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

/// IANA protocol numbers that Portcullis treats specially.
pub mod ipproto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}
