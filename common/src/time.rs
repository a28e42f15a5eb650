use std::fmt;

/// A packet timestamp: microseconds since the Unix epoch, the resolution EVE JSON logs.
///
/// Nanosecond captures are truncated to microseconds on read, as Suricata does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MICROS_PER_SEC: i64 = 1_000_000;

    pub fn from_secs_micros(secs: i64, micros: i64) -> Self {
        Timestamp(secs.saturating_mul(Self::MICROS_PER_SEC).saturating_add(micros))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_SEC)
    }

    pub fn subsec_micros(self) -> i64 {
        self.0.rem_euclid(Self::MICROS_PER_SEC)
    }

    /// `self + secs` seconds, saturating.
    pub fn add_secs(self, secs: u32) -> Self {
        Timestamp(self.0.saturating_add(i64::from(secs) * Self::MICROS_PER_SEC))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.secs(), self.subsec_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_negative_times_without_negative_micros() {
        let t = Timestamp(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_micros(), 999_999);
        assert_eq!(Timestamp::from_secs_micros(3, 5).to_string(), "3.000005");
    }
}
