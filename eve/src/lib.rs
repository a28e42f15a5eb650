//! EVE JSON output, the event format Suricata writes and that Elastic, Wazuh, Kibana and jq
//! already read. This crate owns the one writer every event type goes through
//! ([`EveWriter`]: one JSON object per line, to a file or stdout) and the serialisation of each
//! event type with Suricata's field names and order: `flow` events from
//! [`FlowRecord`](portcullis_flowtable::FlowRecord)s, `alert` and `drop` events from a
//! [`PacketInfo`] (with the rule's [`AlertRule`] or the packet's [`DropInfo`]), and `stats`
//! events from [`Stats`]. A flow model's alert ([`ml_alert_event`]) is an `alert` event about
//! a flow rather than a packet, with its verdict in `alert.context.ml` ([`MlVerdict`]).
//! Addresses are written as Suricata writes them ([`EveIp`]). Output validates against
//! Suricata's EVE schema (`etc/eve-schema.json` of suricata-verify), which a test checks. It
//! formats and writes; it decides nothing about what to log.

mod app;
mod event;
mod packet;
mod writer;

pub use app::AlertApp;
pub use event::{flow_event, format_timestamp, proto_name, stats_event, CaptureStats, DetectStats, FlowEvent, IpsStats, Stats, XdpStats};
pub use packet::{alert_event, drop_event, ml_alert_event, AlertEvent, AlertRule, DropEvent, DropInfo, DropReason, EveIp, MlFeature, MlVerdict, PacketInfo};
pub use writer::{EveError, EveWriter};
