//! Frames in, [`PacketMeta`](portcullis_common::PacketMeta) out. The dataplane owns the
//! capture sources (today the offline [`capture::CaptureFile`] reader for pcap and pcapng;
//! AF_XDP, AF_PACKET and libpcap live capture join it behind the same interface) and the
//! [`decode::Decoder`], which turns one link-layer frame into the small `Copy` summary the
//! flow table and detection use, reassembling IPv4/IPv6 fragments on the way. It knows
//! nothing of flows, rules or verdicts. Malformed frames are counted as named
//! [`Anomaly`](portcullis_common::Anomaly) values and never stop capture; a damaged capture
//! file yields one [`capture::CaptureError`] naming the file and byte offset.

pub mod capture;
pub mod decode;
mod defrag;
pub mod live;

pub use capture::{capture_files, CaptureError, CaptureFile, Frame, LinkType};
pub use decode::{DecodeStats, Decoded, Decoder, DecoderConfig};
