//! (Being written: see the live-dataplane issue.)

use std::time::Duration;

use super::{Capture, LiveConfig, LiveError, LiveFrame, PortStats, Topology};

#[derive(Debug)]
pub struct PcapPort {
    _private: (),
}

pub fn open(_cfg: &LiveConfig, _topology: &Topology) -> Result<Capture, LiveError> {
    Err(LiveError::NotBuilt("pcap_live", "not written yet"))
}

impl PcapPort {
    pub fn poll<F>(&mut self, _max: usize, _timeout: Duration, _f: F) -> Result<usize, LiveError>
    where
        F: FnMut(&[LiveFrame<'_>], &mut [bool]),
    {
        Ok(0)
    }

    pub fn stats(&self) -> PortStats {
        PortStats::default()
    }

    pub fn backlog(&self) -> usize {
        0
    }

    pub fn describe(&self) -> String {
        String::new()
    }
}
