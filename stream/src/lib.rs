//! TCP stream reassembly. This crate owns turning one direction's TCP segments, in arrival
//! order, into the in-order byte stream the detection engine inspects: bounded depth,
//! bounded out-of-order buffering, a documented overlap policy, anomalies counted.
//!
//! A flow holds two [`Reassembler`]s, one per direction. For each TCP packet the owner calls
//! [`Reassembler::segment`] on the packet's direction with the sequence number, flags and
//! payload, and gets a [`Delivered`]: the bytes that newly became in order and their stream
//! offset (0 = the first byte after the ISN). In the common case (the segment continues the
//! stream) those bytes are a range of the payload itself and nothing is copied; only when
//! out-of-order data is involved are they copied into the caller's reused scratch `Vec`.
//! Calling [`Reassembler::ack`] on the other direction with the packet's acknowledgement number
//! lets a direction skip holes the receiver has acknowledged (data lost before the sensor);
//! it delivers one contiguous run per call, so it is repeated while it returns bytes.
//! [`Reassembler::release`] at flow end returns buffered memory to the gauge.
//!
//! It follows Suricata 7's stream engine where that changes which bytes are inspected: SYN and
//! FIN each take a sequence number; `depth` is counted from ISN + 1 and cuts a segment that
//! crosses it; without a SYN the stream starts midstream at the first ACK-bearing segment;
//! overlaps with buffered data follow the configured os-policy ([`OverlapPolicy`], `bsd` by
//! default: the new copy wins only where it starts before the buffered one); gaps are skipped
//! and counted. It differs where per-packet inspection demands: bytes are delivered as soon as
//! they are in order (Suricata's IDS mode waits for the ACK), so delivered bytes are final and
//! a retransmission that contradicts them is counted as an overlap but cannot be checked for
//! different data, because delivered bytes are not kept.
//!
//! It does not track connection state (the flow table does), validate windows or checksums,
//! or parse application protocols. Counters are in [`StreamStats`], named as Suricata names
//! them.

mod buffer;
mod config;
mod reassembler;
mod stats;

pub use config::{OverlapPolicy, StreamConfig};
pub use portcullis_common::TcpFlags;
pub use reassembler::{Delivered, Reassembler, Source};
pub use stats::StreamStats;

#[cfg(test)]
mod tests;
