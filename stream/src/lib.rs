//! TCP stream reassembly. This crate owns turning one direction's TCP segments, in arrival
//! order, into the in-order byte stream the detection engine inspects: bounded depth,
//! bounded out-of-order buffering, a documented overlap policy, anomalies counted.
