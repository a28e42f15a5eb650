//! Helpers shared by the dataplane's integration tests. Each test binary uses a different part.
#![allow(dead_code)]

pub mod netns;
