//! EVE JSON output, the event format Suricata writes and that Elastic, Wazuh, Kibana and jq
//! already read. This crate owns the one writer every event type goes through
//! ([`EveWriter`]: one JSON object per line, to a file or stdout) and the serialisation of each
//! event type with Suricata's field names: `flow` events from
//! [`FlowRecord`](portcullis_flowtable::FlowRecord)s and `stats` events from [`Stats`]. Output
//! validates against Suricata's EVE schema (`etc/eve-schema.json` of suricata-verify), which a
//! test checks. It formats and writes; it decides nothing about what to log.

mod event;
mod writer;

pub use event::{flow_event, format_timestamp, proto_name, stats_event, FlowEvent, Stats};
pub use writer::{EveError, EveWriter};
